"""The figure catalogue behind figures/README.md."""

from __future__ import annotations

import re
from pathlib import Path

from specfusion_lib.plotting.figures_index import CATALOGUE, write_index

ROOT = Path(__file__).resolve().parents[1]


def test_every_index_row_has_five_cells_even_when_a_value_holds_a_bar(tmp_path: Path) -> None:
    for entry in CATALOGUE:
        folder = tmp_path / "tables" if entry.stem[:3] != "fig" else tmp_path
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{entry.stem}.{'png' if folder == tmp_path else 'csv'}").write_bytes(b"")
    rows = [line for line in write_index(tmp_path).read_text().splitlines()
            if line.startswith("| [")]
    assert len(rows) == len(CATALOGUE)
    assert any("\\|" in row for row in rows)  # e.g. Table 1's |ΔE_g|
    for row in rows:
        assert len(re.split(r"(?<!\\)\|", row)) == 7, row  # 5 cells between 6 bars


def test_committed_index_is_what_the_catalogue_writes(tmp_path: Path) -> None:
    committed = ROOT / "figures"
    for path in committed.rglob("*"):
        if path.is_file() and path.name != "README.md":
            target = tmp_path / path.relative_to(committed)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(b"")
    write_index(tmp_path)
    assert (tmp_path / "README.md").read_text() == (committed / "README.md").read_text()
