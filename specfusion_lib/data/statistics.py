"""Dataset statistics of a snapshot (the tables behind SI Fig. S1–S3, S6, S7 and S17).

All functions take a loaded :class:`~specfusion_lib.data.snapshot.Snapshot` and return
pandas objects or arrays; plotting lives in :mod:`specfusion_lib.plotting.common`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
from pymatgen.core import Composition, Element
from tqdm.auto import tqdm

from specfusion_lib.core.errors import InputFileError, SpectrumError
from specfusion_lib.core.tasks import CLASSIFICATION_TASKS, REGRESSION_TASKS, TASKS
from specfusion_lib.data.snapshot import Snapshot

__all__ = [
    "classification_label_table",
    "element_counts",
    "nelements_counts",
    "processed_spectra_by_element",
    "regression_label_table",
    "top_anonymous_formulas",
]


def element_counts(snapshot: Snapshot) -> pd.Series:
    """Number of materials containing each element (Fig. S1), sorted by atomic number."""
    counter = Counter(el for elements in snapshot.materials["elements"] for el in elements)
    order = sorted(counter, key=lambda s: Element(s).Z)
    return pd.Series({s: counter[s] for s in order}, name="materials", dtype=int)


def nelements_counts(snapshot: Snapshot) -> pd.Series:
    """Number of materials by number of elements (Fig. S2)."""
    return snapshot.materials["nelements"].value_counts().sort_index().rename("materials")


def top_anonymous_formulas(snapshot: Snapshot, n: int = 10) -> pd.Series:
    """The ``n`` most frequent anonymous formulas (e.g. ``ABC3``) and their counts (Fig. S3)."""
    anonymous = snapshot.materials["formula"].map(lambda f: Composition(f).anonymized_formula)
    return anonymous.value_counts().head(n).rename("materials")


def classification_label_table(snapshot: Snapshot) -> pd.DataFrame:
    """Class counts of each classification task, absent labels counted apart (Fig. S6)."""
    rows = []
    for name in CLASSIFICATION_TASKS:
        task = TASKS[name]
        labels = task.labels(snapshot.materials)
        for cls in task.classes:
            rows.append({"task": name, "class": cls, "materials": int((labels == cls).sum())})
        rows.append({"task": name, "class": "(absent)", "materials": int(labels.isna().sum())})
    return pd.DataFrame(rows)


def regression_label_table(snapshot: Snapshot) -> pd.DataFrame:
    """Summary statistics of each regression target (Fig. S7); NaN rows when absent."""
    rows = []
    for name in REGRESSION_TASKS:
        task = TASKS[name]
        values = task.labels(snapshot.materials).dropna()
        rows.append({
            "task": name, "unit": task.unit, "n": len(values),
            "mean": values.mean() if len(values) else np.nan,
            "std": values.std() if len(values) > 1 else np.nan,
            "min": values.min() if len(values) else np.nan,
            "max": values.max() if len(values) else np.nan,
        })
    return pd.DataFrame(rows)


def processed_spectra_by_element(
    snapshot: Snapshot,
    elements: list[str] | None = None,
    edge: str = "K",
    max_per_element: int | None = None,
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, np.ndarray], pd.DataFrame]:
    """Preprocess the snapshot's spectra and group them by absorbing element (Fig. S17).

    Every spectrum goes through :func:`specfusion_lib.spectra.xanes.preprocess_xanes`
    (E0, edge-step normalisation, 200-point window, per-spectrum standardisation). Spectra
    that cannot be processed are skipped and listed in the returned report, never dropped
    silently.

    Args:
        snapshot: The snapshot.
        elements: Absorbing elements to keep (default: every transition metal present).
        edge: Absorption edge.
        max_per_element: Random subsample per element (None: all).
        seed: Seed of the subsample.

    Returns:
        ``(grid, spectra, skipped)``: the common energy grid relative to E0 (eV), a dict
        element → array ``(n_spectra, n_points)`` and a DataFrame of skipped spectra with the
        reason.
    """
    from specfusion_lib.core.elements import TRANSITION_METALS
    from specfusion_lib.spectra.xanes import XANESSpectrum, preprocess_xanes

    table = snapshot.spectra[snapshot.spectra["edge"] == edge]
    keep = set(elements) if elements is not None else set(TRANSITION_METALS)
    table = table[table["element"].isin(keep)]
    if max_per_element is not None:
        table = (table.groupby("element", group_keys=False)
                 .apply(lambda g: g.sample(min(len(g), max_per_element), random_state=seed)))
    grouped: dict[str, list[np.ndarray]] = {}
    skipped = []
    grid = None
    for row in tqdm(table.itertuples(index=False), total=len(table), desc="preprocess XANES",
                    disable=len(table) < 200):
        try:
            spectrum = XANESSpectrum(energy=row.energy, mu=row.mu, element=row.element,
                                     edge=row.edge, source=f"{row.material_id}:{row.element}")
            processed = preprocess_xanes(spectrum)
        except (SpectrumError, InputFileError) as exc:
            skipped.append({"material_id": row.material_id, "element": row.element,
                            "reason": str(exc)})
            continue
        grid = processed.grid if grid is None else grid
        grouped.setdefault(row.element, []).append(processed.values)
    spectra = {el: np.vstack(rows) for el, rows in grouped.items()}
    skipped_df = pd.DataFrame(skipped, columns=["material_id", "element", "reason"])
    return (grid if grid is not None else np.empty(0)), spectra, skipped_df
