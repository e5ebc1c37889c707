"""Built-in enrichment plugins."""
