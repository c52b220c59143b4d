"""Data layer: snapshot format, Materials Project source, file readers."""
