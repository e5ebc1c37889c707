"""A real routed network on one Linux machine, built from network namespaces.

Used by tracekit's own tests, by plugin authors' tests (through the pytest plugin in
:mod:`tracekit.testing.pytest_plugin`) and by ``tracekit demo``.
"""

from tracekit.testing.netlab import DIAMOND, MESHED, STEPPED, WIDE_DIAMOND, Lab, LabError

__all__ = ["DIAMOND", "MESHED", "STEPPED", "WIDE_DIAMOND", "Lab", "LabError"]
