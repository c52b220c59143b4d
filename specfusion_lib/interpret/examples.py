"""The paper's Grad-CAM example compounds, found in a snapshot (or honestly replaced).

The paper shows Grad-CAM maps of three Y–Ti oxides (main text Fig. 3d–f; SI Fig. S15, S16).
:func:`choose_examples` looks each up in the active snapshot by *reduced formula* (and by the
paper's Materials Project id, which decides between polymorphs of an MP snapshot). A compound
counts as found only if it has a usable TM spectrum in the features. Otherwise another
compound takes its place, and the returned note says so: preferably one of the given
``preferred_ids`` (e.g. the test part of the model, which the network never trained on),
ranked by the number of TM spectra (two TM edges show best how attention moves between
elements) and then by the number of elements. Nothing is invented: when no compound has a
spectrum the choice is empty and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
from pymatgen.core import Composition

from specfusion_lib.properties.features import FeatureSet

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = ["PAPER_EXAMPLES", "ExampleChoice", "PaperExample", "choose_examples", "examples_table"]


@dataclass(frozen=True)
class PaperExample:
    """A compound the paper shows.

    Attributes:
        figure: Paper figure(s) ("Fig. 3d–f").
        formula: Reduced formula.
        mp_id: Materials Project id the paper names.
    """

    figure: str
    formula: str
    mp_id: str


#: The paper's Grad-CAM examples (main text Fig. 3d–f; SI Fig. S15, S16).
PAPER_EXAMPLES: tuple[PaperExample, ...] = (
    PaperExample("Fig. 3d–f", "Y2TiO5", "mp-17559"),
    PaperExample("Fig. S15", "Y2Ti2O7", "mp-5373"),
    PaperExample("Fig. S16", "YTiO3", "mp-4355"),
)


@dataclass(frozen=True)
class ExampleChoice:
    """The compound shown for one of the paper's examples.

    Attributes:
        figure: Paper figure.
        wanted: The paper's compound (reduced formula).
        material_id: The compound shown (``None`` if none has a usable spectrum).
        formula: Its formula.
        found: Whether it *is* the paper's compound.
        note: What was done and why (shown in figure titles and tables).
        row: Its row in the features (``-1`` if none).
    """

    figure: str
    wanted: str
    material_id: str | None
    formula: str
    found: bool
    note: str
    row: int = -1

    def title(self) -> str:
        """Short title: the compound, marked when it replaces the paper's."""
        if self.material_id is None:
            return f"{self.wanted}: no compound with a usable spectrum"
        if self.found:
            return f"{self.formula} ({self.material_id})"
        return f"{self.formula} ({self.material_id}) in place of {self.wanted}"


def _reduced(formula: str) -> str:
    return Composition(formula).reduced_formula


def choose_examples(snapshot: Snapshot, features: FeatureSet,
                    examples: Sequence[PaperExample] = PAPER_EXAMPLES, *,
                    preferred_ids: Iterable[str] = ()) -> list[ExampleChoice]:
    """Find the paper's example compounds, or choose stand-ins (see the module docstring).

    Args:
        snapshot: The snapshot (its ``materials`` table: ``material_id``, ``formula``).
        features: The model inputs; a compound is usable only if it is in them.
        examples: The compounds wanted.
        preferred_ids: Material ids to draw stand-ins from first (e.g. the test part).

    Returns:
        One :class:`ExampleChoice` per example, each with a different compound where
        possible.
    """
    materials = snapshot.materials
    reduced = materials["formula"].map(_reduced)
    formula_of = dict(zip(materials["material_id"], materials["formula"], strict=True))
    row_of = {m: i for i, m in enumerate(features.material_ids)}
    read = features.spectrum_mask if features.all_element else (features.spectrum_mask
                                                                & features.tm_mask)
    n_spectra = read.sum(axis=1)

    def rank(mid: str) -> tuple:
        i = row_of[mid]
        return (-int(n_spectra[i]), -len(features.elements[i]), mid)

    preferred = sorted((m for m in dict.fromkeys(preferred_ids) if m in row_of), key=rank)
    preferred_set = set(preferred)
    everything = sorted(row_of, key=rank)
    used: set[str] = set()
    out: list[ExampleChoice] = []
    for ex in examples:
        wanted = _reduced(ex.formula)
        matches = list(materials.loc[reduced == wanted, "material_id"])
        usable = sorted((m for m in matches if m in row_of),
                        key=lambda m: (m != ex.mp_id, *rank(m)))
        if usable:
            mid = usable[0]
            used.add(mid)
            where = ""
            if preferred:
                where = (", a held-out test compound" if mid in preferred_set
                         else ", not among the held-out test compounds")
            out.append(ExampleChoice(ex.figure, wanted, mid, formula_of[mid], True,
                                     f"{wanted} found in this snapshot ({mid}{where})",
                                     row_of[mid]))
            continue
        if matches:
            why = (f"{wanted} is in this snapshot ({', '.join(matches)}) but has no usable TM "
                   "spectrum")
        else:
            why = f"{wanted} is not in this snapshot"
        pool = [m for m in preferred if m not in used] or [m for m in everything
                                                           if m not in used]
        if not pool:
            out.append(ExampleChoice(ex.figure, wanted, None, "", False,
                                     f"{why}; no other compound with a usable spectrum left"))
            continue
        mid = pool[0]
        used.add(mid)
        source = ("a held-out test compound" if mid in preferred_set
                  else "a compound of the snapshot")
        i = row_of[mid]
        k = int(n_spectra[i])
        out.append(ExampleChoice(
            ex.figure, wanted, mid, formula_of.get(mid, mid), False,
            f"{why}; showing {source} instead: {formula_of.get(mid, mid)} ({mid}, "
            f"{k} spectr{'um' if k == 1 else 'a'} read by the model)", i))
    return out



def examples_table(choices: Sequence[ExampleChoice]) -> pd.DataFrame:
    """The choices as a table: ``figure``, ``wanted``, ``material_id``, ``formula``,
    ``found``, ``note``."""
    return pd.DataFrame([{"figure": c.figure, "wanted": c.wanted, "material_id": c.material_id,
                          "formula": c.formula, "found": c.found, "note": c.note}
                         for c in choices],
                        columns=["figure", "wanted", "material_id", "formula", "found", "note"])
