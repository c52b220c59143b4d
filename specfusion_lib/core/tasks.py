"""Prediction targets of the paper (Fig. 2c–g, S6–S8), defined once.

Each :class:`Task` says how its label is read from a snapshot's materials table. A task whose
label the snapshot lacks is *not available* and is reported as such; nothing is invented.

Class labels follow the Materials Project fields: band-gap presence is ``band_gap > 0``
(the paper's "BandGap" classification), ``is_gap_direct`` and ``is_magnetic`` are booleans,
``ordering`` is one of NM / FM / AFM / FiM.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from specfusion_lib.core.errors import ConfigurationError

__all__ = ["CLASSIFICATION_TASKS", "REGRESSION_TASKS", "TASKS", "Task", "get_task"]


def _column(name: str) -> Callable[[pd.DataFrame], pd.Series]:
    def read(materials: pd.DataFrame) -> pd.Series:
        return materials[name]

    return read


def _has_band_gap(materials: pd.DataFrame) -> pd.Series:
    gap = materials["band_gap"].astype(float)
    return pd.Series(np.where(gap.isna(), None, gap > 0.0), index=materials.index,
                     dtype=object)


@dataclass(frozen=True)
class Task:
    """One prediction target.

    Attributes:
        name: Identifier used in file names and the CLI.
        kind: ``"classification"`` or ``"regression"``.
        title: Axis / panel title as in the paper's figures.
        unit: Physical unit of a regression target ("" for classes).
        source_field: The snapshot label the task is derived from.
        classes: Class names in a fixed order (classification only).
        read: Function returning the raw label per material (None/NaN where absent).
        boolean: The raw label is a boolean; ``False``/``True`` map to ``classes[0]``/``[1]``.
    """

    name: str
    kind: str
    title: str
    unit: str
    source_field: str
    classes: tuple[str, ...] = ()
    read: Callable[[pd.DataFrame], pd.Series] | None = None
    boolean: bool = False

    def labels(self, materials: pd.DataFrame) -> pd.Series:
        """Labels of every material: class names (str) or floats; None/NaN when absent."""
        reader = self.read or _column(self.source_field)
        raw = reader(materials)
        if self.kind == "regression":
            return raw.astype(float)

        def to_class(value: object) -> str | None:
            if value is None or (isinstance(value, float) and np.isnan(value)):
                return None
            if self.boolean:
                return self.classes[1] if bool(value) else self.classes[0]
            return str(value)

        return raw.map(to_class).astype(object)

    def available(self, materials: pd.DataFrame) -> bool:
        """Whether the snapshot has this label for at least one material."""
        return bool(self.labels(materials).notna().any())


TASKS: dict[str, Task] = {
    "has_band_gap": Task("has_band_gap", "classification", "Band gap present", "",
                         "band_gap", ("no gap", "gap"), _has_band_gap, boolean=True),
    "is_gap_direct": Task("is_gap_direct", "classification", "Direct gap", "",
                          "is_gap_direct", ("indirect", "direct"), boolean=True),
    "is_magnetic": Task("is_magnetic", "classification", "Magnetic", "", "is_magnetic",
                        ("non-magnetic", "magnetic"), boolean=True),
    "ordering": Task("ordering", "classification", "Magnetic ordering", "", "ordering",
                     ("NM", "FM", "AFM", "FiM")),
    "formation_energy_per_atom": Task("formation_energy_per_atom", "regression",
                                      "Formation energy $E_f$", "eV/atom",
                                      "formation_energy_per_atom"),
    "efermi": Task("efermi", "regression", "Fermi level $E_{fermi}$", "eV", "efermi"),
    "band_gap": Task("band_gap", "regression", "Band gap $E_g$", "eV", "band_gap"),
    "density": Task("density", "regression", "Density", "g/cm$^3$", "density"),
}

CLASSIFICATION_TASKS = tuple(n for n, t in TASKS.items() if t.kind == "classification")
REGRESSION_TASKS = tuple(n for n, t in TASKS.items() if t.kind == "regression")


def get_task(name: str) -> Task:
    """Return the task called ``name``.

    Raises:
        ConfigurationError: For an unknown task.
    """
    try:
        return TASKS[name]
    except KeyError:
        raise ConfigurationError(f"unknown task {name!r}; choose one of {list(TASKS)}") from None
