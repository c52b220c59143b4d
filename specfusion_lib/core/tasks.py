"""Every prediction task of the library, declared once (SPEC §3).

* :data:`TASKS`: the paper's eight material-level property targets (Fig. 2c–g, S6–S8).
* :data:`ALL_TASKS`: those eight plus ``crystal_system`` (material level, the XANES-only
  baseline of Fig. S21) and the element-level ``oxidation_state`` and
  ``coordination_number`` (one label per TM element; structure inference, SI §S2).
* :data:`CRYSTAL_SYSTEMS`: the seven crystal systems, in the class order of the trained models.

Each :class:`Task` says how its label is read from a snapshot's materials table. A task whose
label the snapshot lacks is *not available* and is reported as such; nothing is invented.
Turning a task into model targets (padding, per-element labels from the ``sites`` column) is
:mod:`specfusion_lib.properties.features`' job.

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

__all__ = [
    "ALL_TASKS",
    "CLASSIFICATION_TASKS",
    "CRYSTAL_SYSTEMS",
    "REGRESSION_TASKS",
    "TASKS",
    "Task",
]

#: The seven crystal systems, in the order of increasing symmetry used by spglib/pymatgen.
#: This is the class order of the trained crystal-system models: do not reorder.
CRYSTAL_SYSTEMS: tuple[str, ...] = (
    "triclinic",
    "monoclinic",
    "orthorhombic",
    "tetragonal",
    "trigonal",
    "hexagonal",
    "cubic",
)


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
        level: ``"material"`` (one label per compound) or ``"element"`` (one label per TM
            element, derived from the per-site ``sites`` column by
            :func:`specfusion_lib.properties.features.task_data`).
        observed_classes: The classes of a model are the values observed in the data, not
            ``classes``; ``classes`` (if given) only fixes their order, and values outside it
            follow alphabetically. Element-level classes are the observed values, ascending.
    """

    name: str
    kind: str
    title: str
    unit: str
    source_field: str
    classes: tuple[str, ...] = ()
    read: Callable[[pd.DataFrame], pd.Series] | None = None
    boolean: bool = False
    level: str = "material"
    observed_classes: bool = False

    def labels(self, materials: pd.DataFrame) -> pd.Series:
        """Labels of every material: class names (str) or floats; None/NaN when absent.

        Raises:
            ConfigurationError: For an element-level task (its labels are per element).
        """
        if self.level != "material":
            raise ConfigurationError(
                f"task {self.name!r} has one label per element; use "
                "specfusion_lib.properties.features.task_data")
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


#: The paper's eight material-level property targets (Fig. 2c–g), in figure order.
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

#: Every task the library trains: :data:`TASKS`, the crystal system from XANES (material
#: level; classes: the observed systems in :data:`CRYSTAL_SYSTEMS` order) and the per-TM
#: oxidation state and coordination number (element level; classes: the observed values).
ALL_TASKS: dict[str, Task] = {
    **TASKS,
    "crystal_system": Task("crystal_system", "classification", "Crystal system", "",
                           "crystal_system", CRYSTAL_SYSTEMS, observed_classes=True),
    "oxidation_state": Task("oxidation_state", "classification", "TM oxidation state", "",
                            "sites", level="element", observed_classes=True),
    "coordination_number": Task("coordination_number", "classification",
                                "TM coordination number", "", "sites", level="element",
                                observed_classes=True),
}

