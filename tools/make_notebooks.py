"""Write the notebooks notebooks/NN_*.ipynb from the sources in tools/notebook_sources/.

Notebooks are the source of truth once written; this script only exists to create them
reproducibly and is not part of the library::

    python tools/make_notebooks.py          # every notebook
    python tools/make_notebooks.py 02 07    # only those whose name starts so

Each module ``tools/notebook_sources/nb*.py`` defines ``NOTEBOOKS`` (file stem → notebook).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]


def all_notebooks() -> dict[str, nbformat.NotebookNode]:
    """Every notebook of every source module, by file stem."""
    sys.path.insert(0, str(ROOT / "tools"))
    found: dict[str, nbformat.NotebookNode] = {}
    for path in sorted((ROOT / "tools" / "notebook_sources").glob("nb*.py")):
        module = importlib.import_module(f"notebook_sources.{path.stem}")
        clash = found.keys() & module.NOTEBOOKS.keys()
        if clash:
            raise SystemExit(f"{path.name}: notebook(s) {sorted(clash)} defined twice")
        found.update(module.NOTEBOOKS)
    return dict(sorted(found.items()))


if __name__ == "__main__":
    # Cell ids are random, so rewriting an unchanged notebook still changes its file: name
    # the notebooks you changed.
    wanted = sys.argv[1:]
    for name, nb in all_notebooks().items():
        if wanted and not any(name.startswith(w) for w in wanted):
            continue
        nbformat.validate(nb)
        nbformat.write(nb, ROOT / "notebooks" / f"{name}.ipynb")
        print("wrote", name)
