"""Shared pieces of the notebook sources: the kernel metadata and the ``parameters`` cell."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

ROOT = Path(__file__).resolve().parents[2]

PARAMS = '''# Parameters (papermill overrides these; run_all.sh passes profile and data)
profile = "quick"  # smoke | quick | paper
data = "data/demo"  # snapshot folder
figures_dir = "figures"  # where figures and tables are written
'''


def notebook(cells: list) -> nbformat.NotebookNode:
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "specfusion", "display_name": "Python (specfusion)",
                                 "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def params_cell(extra: str = "") -> nbformat.NotebookNode:
    cell = new_code_cell(PARAMS + extra)
    cell.metadata["tags"] = ["parameters"]
    return cell


CHECKPOINT_PARAM = ('checkpoint_dir = "build/checkpoints"  # model checkpoints '
                    '(read by `specfusion predict`)\n')
