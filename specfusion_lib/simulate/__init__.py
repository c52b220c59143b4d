"""External simulators (FEFF10 XANES)."""
