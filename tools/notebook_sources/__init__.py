"""Sources of the notebooks ``notebooks/NN_*.ipynb``: one module per group of notebooks.

Each module defines ``NOTEBOOKS``, a dict from the notebook's file stem (``"02_property_
prediction"``) to its :class:`nbformat.NotebookNode`; ``tools/make_notebooks.py`` collects
them all.
"""
