"""Make text from the network safe to print on a terminal."""

from __future__ import annotations

import unicodedata


def printable(text: str) -> str:
    """``text`` with control and other invisible characters shown as escapes (``\\x1b``)."""
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable() and unicodedata.category(ch)[0] != "C":
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)
