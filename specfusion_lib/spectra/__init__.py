"""Spectrum processing: XANES preprocessing and PXRD simulation."""
