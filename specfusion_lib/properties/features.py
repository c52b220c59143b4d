"""Snapshot → padded arrays for SpecFusionNet: element descriptors, spectra, masks, labels.

SpecFusionNet sees a compound as a *set of elements*. Every element carries its atomic
descriptors (SI Fig. S5, :func:`specfusion_lib.core.elements.descriptor_matrix`) and a flag saying
whether it is a transition metal (TM: Sc–Zn, Y–Cd); every TM additionally carries its
preprocessed K-edge XANES (200 points on the 56 eV window around E0,
:func:`specfusion_lib.spectra.xanes.preprocess_xanes`). In the *all-element* variant (Fig. 2h)
every element that has a spectrum in the snapshot carries it.

Compounds have different numbers of elements, so the arrays are padded to the largest element
count ``E`` with boolean masks (``True`` = real entry). Padding values are zero and the model
never lets them contribute (masked encoders, attention ``key_padding_mask``, masked pooling).

Two steps, so that the (comparatively slow) spectrum preprocessing runs once per snapshot:

1. :func:`build_features` → :class:`FeatureSet`: the inputs of every material that has at least
   one usable spectrum. Spectra that fail preprocessing are skipped and listed in
   :attr:`FeatureSet.skipped` (with the reason); nothing is repaired silently.
2. :func:`task_data` → :class:`TaskData`: the labels of one task and the inputs of the materials
   that have that label. Materials whose label is absent are *excluded* for that task (never
   imputed). A task whose label the snapshot lacks altogether raises
   :class:`TaskNotAvailableError` ("not available in this snapshot").

Tasks (:data:`FEATURE_TASKS`, the registry :data:`specfusion_lib.core.tasks.ALL_TASKS`):

* the eight material-level tasks of :data:`specfusion_lib.core.tasks.TASKS` (Fig. 2c–g);
* ``crystal_system`` (material level, classification over the observed crystal systems; the
  XANES-only baseline of Fig. S21);
* ``oxidation_state`` and ``coordination_number`` (element level, one label per TM element,
  classification over the observed values; used by structure inference, SI §S2). The labels
  are stored per inequivalent *site* in the snapshot's ``sites`` column; an element occupying
  several inequivalent sites (Co in Co3O4: 8 tetrahedral Co²⁺, 16 octahedral Co³⁺ per cell)
  gets the **multiplicity-weighted mode** of its sites' values (Co3O4: oxidation state 3,
  CN 6); ties go to the smaller value. Sites without a value (bond valence failed) are left
  out of the vote; an element with no valued site has no label. Element-level labels are
  arrays of shape ``(N, E)`` holding a class index at labelled TM elements and ``-1``
  elsewhere (padding, non-TM, absent label).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from specfusion_lib.core.elements import (
    TRANSITION_METALS,
    descriptor_columns,
    descriptor_matrix,
    normalize_symbol,
)
from specfusion_lib.core.errors import ConfigurationError, SpecfusionError
from specfusion_lib.core.tasks import ALL_TASKS, Task
from specfusion_lib.data.families import families_of
from specfusion_lib.spectra.xanes import N_POINTS, WINDOW_EV, XANESSpectrum, preprocess_xanes
from specfusion_lib.training.metrics import IGNORE_INDEX

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = [
    "DESCRIPTOR_GROUPS",
    "ELEMENT_TASKS",
    "FEATURE_TASKS",
    "IGNORE_INDEX",
    "FeatureSet",
    "SkippedSpectrum",
    "TaskData",
    "TaskNotAvailableError",
    "TaskSpec",
    "available_tasks",
    "build_features",
    "concat_features",
    "descriptor_group_indices",
    "features_for_compound",
    "get_task_spec",
    "require_task",
    "task_data",
    "weighted_mode",
]


#: Descriptor groups of the ablation study (SI §S1.2: χ, r_atom, IE1–IE3, Z, Type) → columns
#: of :func:`specfusion_lib.core.elements.descriptor_columns` ``("onehot")``.
DESCRIPTOR_GROUPS: dict[str, tuple[str, ...]] = {
    "electronegativity": ("electronegativity",),
    "atomic_radius": ("atomic_radius",),
    "ionization_energies": ("ie1", "ie2", "ie3"),
    "Z": ("Z",),
    "type": tuple(c for c in descriptor_columns("onehot") if c.startswith("type_")),
}


class TaskNotAvailableError(ConfigurationError):
    """The snapshot has no label for a task ("not available in this snapshot").

    A :class:`~specfusion_lib.core.errors.ConfigurationError`, so callers catching that type keep
    working; notebooks catch this one to report the task as not available.
    """


#: A task as :func:`task_data` sees it: the registry's :class:`~specfusion_lib.core.tasks.Task`
#: (name, kind, level, title, unit, source field, class order). Kept as a name for callers.
TaskSpec = Task

#: Every task :func:`task_data` knows, by name (:data:`specfusion_lib.core.tasks.ALL_TASKS`).
FEATURE_TASKS: dict[str, TaskSpec] = ALL_TASKS
#: The element-level (per-TM) tasks.
ELEMENT_TASKS: tuple[str, ...] = tuple(n for n, s in FEATURE_TASKS.items()
                                       if s.level == "element")


def get_task_spec(name: str) -> TaskSpec:
    """Return the :class:`TaskSpec` of a task.

    Raises:
        ConfigurationError: For an unknown task name.
    """
    try:
        return FEATURE_TASKS[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown task {name!r}; choose one of {list(FEATURE_TASKS)}") from None


def descriptor_group_indices(groups: Iterable[str]) -> tuple[int, ...]:
    """Column indices of descriptor groups, for zero-masking ablations.

    Args:
        groups: Names from :data:`DESCRIPTOR_GROUPS` or single column names of
            :func:`~specfusion_lib.core.elements.descriptor_columns` ``("onehot")``.

    Returns:
        Sorted column indices.

    Raises:
        ConfigurationError: For an unknown group or column name.
    """
    columns = descriptor_columns("onehot")
    out: set[int] = set()
    for group in groups:
        names = DESCRIPTOR_GROUPS.get(group, (group,) if group in columns else None)
        if names is None:
            raise ConfigurationError(
                f"unknown descriptor group {group!r}; choose from {list(DESCRIPTOR_GROUPS)} "
                f"or a column of {list(columns)}")
        out.update(columns.index(n) for n in names)
    return tuple(sorted(out))


# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkippedSpectrum:
    """A spectrum left out of the inputs, and why.

    Attributes:
        material_id: Material of the spectrum.
        element: Absorbing element.
        edge: Edge label.
        reason: The preprocessing error message (or "duplicate").
    """

    material_id: str
    element: str
    edge: str
    reason: str


@dataclass(frozen=True, eq=False)
class FeatureSet:
    """Padded model inputs of ``N`` materials with at most ``E`` elements each.

    Shapes (``D`` descriptor columns, ``L`` spectrum points):

    Attributes:
        material_ids: ``N`` material ids.
        elements: Per material, its element symbols in the order of the padded axis.
        descriptors: ``(N, E, D)`` float32, raw descriptor values (not standardised; the
            model standardises with statistics fitted on the training split), 0 at padding.
        element_mask: ``(N, E)`` bool, ``True`` for real elements.
        tm_mask: ``(N, E)`` bool, ``True`` for transition metals (subset of ``element_mask``).
        spectra: ``(N, E, L)`` float32, preprocessed spectra, 0 where there is none.
        spectrum_mask: ``(N, E)`` bool, ``True`` where ``spectra`` holds a spectrum.
        descriptor_names: The ``D`` column names.
        all_element: Whether non-TM elements carry spectra too (Fig. 2h baseline).
        edge: Absorption edge of the spectra.
        window: Window (eV relative to E0) of the spectra.
        skipped: Spectra that were not usable, with the reason.
        dropped_materials: Material id → reason for materials left out entirely (no usable
            spectrum).
        snapshot_id: Id of the snapshot the features come from (``None`` if synthetic).
        families: Structure family of every material (the split key,
            :func:`specfusion_lib.data.families.snapshot_families`; ``None`` if unknown).
    """

    material_ids: tuple[str, ...]
    elements: tuple[tuple[str, ...], ...]
    descriptors: np.ndarray
    element_mask: np.ndarray
    tm_mask: np.ndarray
    spectra: np.ndarray
    spectrum_mask: np.ndarray
    descriptor_names: tuple[str, ...] = descriptor_columns("onehot")
    all_element: bool = False
    edge: str = "K"
    window: tuple[float, float] = WINDOW_EV
    skipped: tuple[SkippedSpectrum, ...] = ()
    dropped_materials: Mapping[str, str] = field(default_factory=dict)
    snapshot_id: str | None = None
    families: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        n = len(self.material_ids)
        if self.families is not None and len(self.families) != n:
            raise ConfigurationError(f"families must have {n} entries, "
                                     f"got {len(self.families)}")
        if self.descriptors.ndim != 3 or self.descriptors.shape[0] != n:
            raise ConfigurationError(
                f"descriptors must have shape (N={n}, E, D), got {self.descriptors.shape}")
        e = self.descriptors.shape[1]
        for name in ("element_mask", "tm_mask", "spectrum_mask"):
            arr = getattr(self, name)
            if arr.shape != (n, e) or arr.dtype != np.bool_:
                raise ConfigurationError(f"{name} must be a bool array of shape {(n, e)}, "
                                         f"got {arr.dtype} {arr.shape}")
        if self.spectra.ndim != 3 or self.spectra.shape[:2] != (n, e):
            raise ConfigurationError(f"spectra must have shape ({n}, {e}, L), "
                                     f"got {self.spectra.shape}")
        if len(self.elements) != n:
            raise ConfigurationError(f"elements must have {n} entries, got {len(self.elements)}")
        if np.any(self.tm_mask & ~self.element_mask) or np.any(
                self.spectrum_mask & ~self.element_mask):
            raise ConfigurationError("tm_mask and spectrum_mask must be subsets of element_mask")

    def __len__(self) -> int:
        return len(self.material_ids)

    @property
    def max_elements(self) -> int:
        """``E``, the padded element axis length."""
        return int(self.descriptors.shape[1])

    @property
    def n_points(self) -> int:
        """``L``, the number of points per spectrum."""
        return int(self.spectra.shape[2])

    @property
    def n_descriptors(self) -> int:
        """``D``, the number of descriptor columns."""
        return int(self.descriptors.shape[2])

    def index_of(self, material_ids: Iterable[str]) -> np.ndarray:
        """Row indices of the given material ids.

        Raises:
            ConfigurationError: If an id is not in the set.
        """
        lookup = {m: i for i, m in enumerate(self.material_ids)}
        try:
            return np.array([lookup[m] for m in material_ids], dtype=np.int64)
        except KeyError as exc:
            raise ConfigurationError(f"material {exc.args[0]!r} is not in the features") from None

    def subset(self, indices: Sequence[int] | np.ndarray) -> FeatureSet:
        """The features of the materials at ``indices`` (same padding ``E``)."""
        idx = np.asarray(indices, dtype=np.int64)
        return replace(
            self,
            material_ids=tuple(self.material_ids[i] for i in idx),
            elements=tuple(self.elements[i] for i in idx),
            descriptors=self.descriptors[idx],
            element_mask=self.element_mask[idx],
            tm_mask=self.tm_mask[idx],
            spectra=self.spectra[idx],
            spectrum_mask=self.spectrum_mask[idx],
            families=None if self.families is None else tuple(self.families[i] for i in idx),
        )

    def summary(self) -> dict[str, Any]:
        """Counts for reports: materials, spectra, skipped spectra, dropped materials."""
        return {
            "materials": len(self),
            "max_elements": self.max_elements,
            "spectra": int(self.spectrum_mask.sum()),
            "skipped_spectra": len(self.skipped),
            "dropped_materials": len(self.dropped_materials),
            "all_element": self.all_element,
            "edge": self.edge,
        }


def concat_features(first: FeatureSet, second: FeatureSet) -> FeatureSet:
    """Rows of ``first`` followed by rows of ``second`` (same padding, descriptors, points,
    edge and window); metadata (skipped, dropped, snapshot id) from ``first``.

    Raises:
        ConfigurationError: The two sets are not shaped alike.
    """
    same = (first.max_elements == second.max_elements and first.n_points == second.n_points
            and first.descriptor_names == second.descriptor_names
            and first.edge == second.edge and first.window == second.window
            and first.all_element == second.all_element)
    if not same:
        raise ConfigurationError("cannot concatenate feature sets of different shapes, "
                                 "descriptors, edge, window or all_element")
    families = (None if first.families is None or second.families is None
                else tuple(first.families) + tuple(second.families))
    return replace(
        first,
        material_ids=tuple(first.material_ids) + tuple(second.material_ids),
        elements=tuple(first.elements) + tuple(second.elements),
        descriptors=np.concatenate([first.descriptors, second.descriptors]),
        element_mask=np.concatenate([first.element_mask, second.element_mask]),
        tm_mask=np.concatenate([first.tm_mask, second.tm_mask]),
        spectra=np.concatenate([first.spectra, second.spectra]),
        spectrum_mask=np.concatenate([first.spectrum_mask, second.spectrum_mask]),
        families=families,
    )


def _process_one(energy: np.ndarray, mu: np.ndarray, element: str, edge: str, source: str,
                 window: tuple[float, float], n_points: int) -> np.ndarray:
    spectrum = XANESSpectrum(energy, mu, element=element, edge=edge, source=source)
    return preprocess_xanes(spectrum, window=window, n_points=n_points, standardize=True).values


def build_features(
    snapshot: Snapshot,
    *,
    all_element: bool = False,
    edge: str = "K",
    window: tuple[float, float] = WINDOW_EV,
    n_points: int = N_POINTS,
    material_ids: Iterable[str] | None = None,
    max_elements: int | None = None,
    require_spectrum: bool = True,
    progress: bool = False,
) -> FeatureSet:
    """Build the padded inputs of a snapshot's materials.

    Each spectrum of the wanted ``edge`` (the TMs' spectra, or every element's with
    ``all_element``) goes through :func:`~specfusion_lib.spectra.xanes.preprocess_xanes`
    (E0, edge-step normalisation, 200 points on the 56 eV window, per-spectrum z-score). A
    spectrum that raises a library error is skipped and recorded in ``skipped``; when a
    (material, element, edge) has several spectra the first is used and the rest are
    recorded as duplicates. Elements keep the order of the materials table's ``elements``.

    Args:
        snapshot: A :class:`~specfusion_lib.data.snapshot.Snapshot`.
        all_element: Use the spectra of every element (Fig. 2h baseline), not only TMs'.
        edge: Absorption edge to read (``"K"``).
        window: Spectrum window in eV relative to E0.
        n_points: Points per spectrum.
        material_ids: Restrict to these materials (default: all).
        max_elements: Pad the element axis to this length (default: the largest compound).
        require_spectrum: Drop materials without any usable spectrum (recorded in
            ``dropped_materials``). With ``False`` they stay, with element features only.
        progress: Show a progress bar over the materials.

    Returns:
        A :class:`FeatureSet`.

    Raises:
        ConfigurationError: If no material is left, or ``max_elements`` is too small.
    """
    t0 = time.perf_counter()
    materials = snapshot.materials
    if material_ids is not None:
        wanted = list(material_ids)
        unknown = set(wanted) - set(materials["material_id"])
        if unknown:
            raise ConfigurationError(f"materials not in the snapshot: {sorted(unknown)[:5]}")
        materials = materials.set_index("material_id").loc[wanted].reset_index()
    spectra = snapshot.spectra
    spectra = spectra.loc[spectra["edge"].astype(str).str.upper() == edge.upper()]
    by_material = {mid: rows for mid, rows in spectra.groupby("material_id", sort=False)}

    skipped: list[SkippedSpectrum] = []
    dropped: dict[str, str] = {}
    rows: list[tuple[str, tuple[str, ...], dict[str, np.ndarray]]] = []
    iterator = materials[["material_id", "elements"]].itertuples(index=False)
    for mid, elements in tqdm(iterator, total=len(materials), desc="XANES features",
                              disable=not progress):
        symbols = tuple(str(s) for s in elements)
        found: dict[str, np.ndarray] = {}
        group = by_material.get(mid)
        if group is not None:
            for rec in group.itertuples(index=False):
                el = str(rec.element)
                if el not in symbols or not (all_element or el in TRANSITION_METALS):
                    continue
                if el in found:
                    skipped.append(SkippedSpectrum(mid, el, edge, "duplicate spectrum"))
                    continue
                try:
                    found[el] = _process_one(np.asarray(rec.energy), np.asarray(rec.mu), el,
                                             edge, f"{mid} {el} {edge}", window, n_points)
                except SpecfusionError as exc:
                    skipped.append(SkippedSpectrum(mid, el, edge, str(exc)))
        if require_spectrum and not found:
            dropped[mid] = "no usable spectrum"
            continue
        rows.append((mid, symbols, found))

    for item in skipped:
        logger.debug("skipped spectrum %s %s %s: %s", item.material_id, item.element, item.edge,
                     item.reason)
    if skipped:
        shown = "; ".join(f"{s.material_id} {s.element}: {s.reason}" for s in skipped[:3])
        logger.warning("XANES features: %d spectrum/spectra skipped (%s%s)", len(skipped), shown,
                       " ..." if len(skipped) > 3 else "")
    logger.info("XANES features (%s edge): %d material(s) kept, %d spectra used, %d skipped, "
                "%d material(s) dropped without a usable spectrum (%.1f s)", edge, len(rows),
                sum(len(r[2]) for r in rows), len(skipped), len(dropped),
                time.perf_counter() - t0)
    if not rows:
        raise ConfigurationError(
            f"no material with a usable {edge}-edge spectrum in snapshot "
            f"{getattr(snapshot, 'snapshot_id', '?')[:12]} ({len(skipped)} spectra skipped)")
    return _assemble(rows, max_elements=max_elements, n_points=n_points, all_element=all_element,
                     edge=edge, window=window, skipped=tuple(skipped), dropped=dropped,
                     snapshot_id=getattr(snapshot, "snapshot_id", None),
                     families=families_of(snapshot, [r[0] for r in rows]))


def _assemble(rows: Sequence[tuple[str, tuple[str, ...], Mapping[str, np.ndarray]]], *,
              max_elements: int | None, n_points: int, all_element: bool, edge: str,
              window: tuple[float, float], skipped: tuple[SkippedSpectrum, ...] = (),
              dropped: Mapping[str, str] | None = None,
              snapshot_id: str | None = None,
              families: tuple[str, ...] | None = None) -> FeatureSet:
    """Pad (material id, element symbols, element → spectrum values) rows into arrays."""
    longest = max(len(r[1]) for r in rows)
    e = longest if max_elements is None else int(max_elements)
    if e < longest:
        raise ConfigurationError(f"max_elements={e} is smaller than the largest compound "
                                 f"({longest} elements)")
    n = len(rows)
    names = descriptor_columns("onehot")
    desc = np.zeros((n, e, len(names)), dtype=np.float32)
    element_mask = np.zeros((n, e), dtype=bool)
    tm_mask = np.zeros((n, e), dtype=bool)
    spec = np.zeros((n, e, n_points), dtype=np.float32)
    spec_mask = np.zeros((n, e), dtype=bool)
    for i, (_, symbols, found) in enumerate(rows):
        k = len(symbols)
        desc[i, :k] = descriptor_matrix(symbols, type_encoding="onehot", fill="median")
        element_mask[i, :k] = True
        for j, el in enumerate(symbols):
            tm_mask[i, j] = el in TRANSITION_METALS
            if el in found:
                spec[i, j] = found[el]
                spec_mask[i, j] = True
    return FeatureSet(
        material_ids=tuple(r[0] for r in rows),
        elements=tuple(r[1] for r in rows),
        descriptors=desc,
        element_mask=element_mask,
        tm_mask=tm_mask,
        spectra=spec,
        spectrum_mask=spec_mask,
        descriptor_names=names,
        all_element=all_element,
        edge=edge,
        window=(float(window[0]), float(window[1])),
        skipped=skipped,
        dropped_materials=dict(dropped or {}),
        snapshot_id=snapshot_id,
        families=families,
    )


def features_for_compound(
    elements: Iterable[str],
    spectra: Mapping[str, XANESSpectrum | np.ndarray],
    *,
    material_id: str = "input",
    all_element: bool = False,
    window: tuple[float, float] = WINDOW_EV,
    n_points: int = N_POINTS,
    max_elements: int | None = None,
) -> FeatureSet:
    """Inputs of one compound from user spectra (e.g. measured XANES), for prediction.

    Args:
        elements: Element symbols of the compound (each once).
        spectra: Element → raw :class:`~specfusion_lib.spectra.xanes.XANESSpectrum` (run
            through ``preprocess_xanes``) or an already preprocessed ``(n_points,)`` array.
        material_id: Id to carry along.
        all_element: Keep non-TM spectra too (for all-element models).
        window: Spectrum window (eV relative to E0).
        n_points: Points per spectrum.
        max_elements: Padding length (default: the element count).

    Returns:
        A one-row :class:`FeatureSet`.

    Raises:
        ElementError: Unknown element symbol.
        SpectrumError: A spectrum cannot be preprocessed (unlike :func:`build_features`,
            errors are raised, not skipped: the user asked for this spectrum).
        ConfigurationError: A spectrum for an element not in ``elements``, or a
            preprocessed array of the wrong length.
    """
    symbols = tuple(normalize_symbol(s) for s in elements)
    found: dict[str, np.ndarray] = {}
    for el, spectrum in spectra.items():
        el = normalize_symbol(el)
        if el not in symbols:
            raise ConfigurationError(f"spectrum given for {el}, which is not among the "
                                     f"elements {symbols}")
        if not (all_element or el in TRANSITION_METALS):
            continue
        if isinstance(spectrum, XANESSpectrum):
            if spectrum.element is not None and spectrum.element != el:
                raise ConfigurationError(f"{spectrum.label} given as the spectrum of {el}")
            values = preprocess_xanes(spectrum.replace(element=el), window=window,
                                      n_points=n_points).values
        else:
            values = np.asarray(spectrum, dtype=np.float64)
            if values.shape != (n_points,):
                raise ConfigurationError(f"preprocessed spectrum of {el} must have shape "
                                         f"({n_points},), got {values.shape}")
        found[el] = values
    edge = next((s.edge for s in spectra.values() if isinstance(s, XANESSpectrum)), "K")
    return _assemble([(material_id, symbols, found)], max_elements=max_elements,
                     n_points=n_points, all_element=all_element, edge=edge, window=window)


# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TaskData:
    """Inputs and labels of one task.

    Attributes:
        spec: The task.
        features: Inputs of the labelled materials (``N`` rows).
        y: Material level: ``(N,)`` int64 class indices or float32 values. Element level:
            ``(N, E)`` int64 class indices, :data:`IGNORE_INDEX` where there is no label.
        class_names: Class names, index order (classification); empty for regression.
        excluded: Reason → number of materials left out (label absent, no spectrum, ...).
    """

    spec: TaskSpec
    features: FeatureSet
    y: np.ndarray
    class_names: tuple[str, ...] = ()
    excluded: Mapping[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def n_outputs(self) -> int:
        """Output width of the model head: classes, or 1 for regression."""
        return len(self.class_names) if self.spec.kind == "classification" else 1

    def subset(self, indices: Sequence[int] | np.ndarray) -> TaskData:
        """The task data of the materials at ``indices``."""
        idx = np.asarray(indices, dtype=np.int64)
        return replace(self, features=self.features.subset(idx), y=self.y[idx])

    def label_counts(self) -> dict[str, int]:
        """Number of labelled samples per class (classification) or ``{"n": ...}``."""
        if self.spec.kind == "regression":
            return {"n": int(self.y.size)}
        flat = self.y[self.y != IGNORE_INDEX]
        return {c: int((flat == i).sum()) for i, c in enumerate(self.class_names)}


def weighted_mode(values: Sequence[float], weights: Sequence[float]) -> float:
    """Multiplicity-weighted mode; ties go to the smaller value."""
    tally: Counter[float] = Counter()
    for v, w in zip(values, weights, strict=True):
        tally[v] += w
    best = max(tally.values())
    return min(v for v, w in tally.items() if w == best)


def _element_labels(sites: list[dict[str, Any]] | None, key: str) -> dict[str, float]:
    if not sites:
        return {}
    by_element: dict[str, tuple[list[float], list[float]]] = {}
    for site in sites:
        value = site.get(key)
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        vals, weights = by_element.setdefault(str(site["element"]), ([], []))
        vals.append(float(value))
        weights.append(float(site.get("multiplicity") or 1))
    return {el: weighted_mode(v, w) for el, (v, w) in by_element.items()}


def _class_name(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _not_available(spec: TaskSpec, snapshot: Snapshot, detail: str = "") -> TaskNotAvailableError:
    sid = str(getattr(snapshot, "snapshot_id", "?"))[:12]
    extra = f" ({detail})" if detail else ""
    return TaskNotAvailableError(
        f"task {spec.name!r} ({spec.source_field}) is not available in this snapshot "
        f"{sid}{extra}")


def require_task(snapshot: Snapshot, task: str) -> TaskSpec:
    """Check cheaply (labels only) that a snapshot has a task's labels.

    Args:
        snapshot: The snapshot.
        task: A name of :data:`FEATURE_TASKS`.

    Returns:
        The task's :class:`TaskSpec`.

    Raises:
        ConfigurationError: For an unknown task.
        TaskNotAvailableError: If no material carries the label.
    """
    spec = get_task_spec(task)
    materials = snapshot.materials
    if spec.source_field not in materials.columns:
        raise _not_available(spec, snapshot, f"no column {spec.source_field!r}")
    if spec.level == "material":
        if not _material_labels(spec, materials).notna().any():
            raise _not_available(spec, snapshot)
    elif not any(_element_labels(_parse_sites(s), spec.name)
                 for s in materials["sites"].dropna()):
        raise _not_available(spec, snapshot, "no TM site carries this label")
    return spec


def _material_labels(spec: TaskSpec, materials: pd.DataFrame) -> pd.Series:
    return spec.labels(materials)


def task_data(snapshot: Snapshot, task: str, features: FeatureSet | None = None, *,
              all_element: bool = False) -> TaskData:
    """Labels of one task joined to the inputs of the materials that have them.

    Args:
        snapshot: The snapshot the labels are read from.
        task: A name of :data:`FEATURE_TASKS`.
        features: Inputs from :func:`build_features` (built here when ``None``).
        all_element: Passed to :func:`build_features` when ``features`` is ``None``.

    Returns:
        A :class:`TaskData` over the labelled materials, in the order of ``features``.

    Raises:
        ConfigurationError: For an unknown task.
        TaskNotAvailableError: If no material of the snapshot (with usable spectra) has the
            label.
    """
    spec = require_task(snapshot, task)
    materials = snapshot.materials
    raw = (_material_labels(spec, materials) if spec.level == "material"
           else materials["sites"])
    if features is None:
        features = build_features(snapshot, all_element=all_element)
    label_of = dict(zip(materials["material_id"], raw, strict=True))
    excluded: Counter[str] = Counter()
    if features.dropped_materials:
        excluded["no usable spectrum"] += len(features.dropped_materials)

    if spec.level == "material":
        keep, values = [], []
        for i, mid in enumerate(features.material_ids):
            value = label_of.get(mid)
            if value is None or (isinstance(value, float) and np.isnan(value)):
                excluded["label absent"] += 1
                continue
            keep.append(i)
            values.append(value)
        if not keep:
            raise _not_available(spec, snapshot, "no labelled material has a usable spectrum")
        if spec.kind == "regression":
            return TaskData(spec, features.subset(keep), np.asarray(values, dtype=np.float32),
                            (), dict(excluded))
        if spec.observed_classes:
            order = {c: k for k, c in enumerate(spec.classes)}
            classes = tuple(sorted(set(values), key=lambda c: (order.get(c, len(order)), c)))
        else:
            classes = spec.classes
        index = {c: k for k, c in enumerate(classes)}
        kept = [(i, index[v]) for i, v in zip(keep, values, strict=True) if v in index]
        if len(kept) < len(keep):
            excluded["unknown class"] += len(keep) - len(kept)
        if not kept:
            raise _not_available(spec, snapshot, "no label within the task's classes")
        idx, y = zip(*kept, strict=True)
        return TaskData(spec, features.subset(list(idx)), np.asarray(y, dtype=np.int64),
                        tuple(classes), dict(excluded))

    # element level: per-TM labels from the sites column
    key = spec.name
    per_material: dict[int, dict[str, float]] = {}
    for i, mid in enumerate(features.material_ids):
        raw_sites = label_of.get(mid)
        if raw_sites is None or (isinstance(raw_sites, float) and np.isnan(raw_sites)):
            excluded["label absent"] += 1
            continue
        sites = _parse_sites(raw_sites)
        labels = {el: v for el, v in _element_labels(sites, key).items()
                  if el in TRANSITION_METALS and el in features.elements[i]}
        if not labels:
            excluded["label absent"] += 1
            continue
        per_material[i] = labels
    if not per_material:
        raise _not_available(spec, snapshot, "no TM site carries this label")
    values = sorted({v for labels in per_material.values() for v in labels.values()})
    classes = tuple(_class_name(v) for v in values)
    index = {v: k for k, v in enumerate(values)}
    keep = sorted(per_material)
    y = np.full((len(keep), features.max_elements), IGNORE_INDEX, dtype=np.int64)
    for row, i in enumerate(keep):
        for j, el in enumerate(features.elements[i]):
            if el in per_material[i]:
                y[row, j] = index[per_material[i][el]]
    return TaskData(spec, features.subset(keep), y, classes, dict(excluded))


def _parse_sites(raw: Any) -> list[dict[str, Any]] | None:
    if isinstance(raw, list):
        return raw
    return json.loads(raw) if isinstance(raw, str) else None


def available_tasks(snapshot: Snapshot) -> dict[str, bool]:
    """Whether each task of :data:`FEATURE_TASKS` has labels in the snapshot.

    This checks the labels only (cheap); a task can still end up unavailable when none of
    its labelled materials has a usable spectrum.
    """
    materials = snapshot.materials
    out = {}
    for name, spec in FEATURE_TASKS.items():
        if spec.source_field not in materials.columns:
            out[name] = False
        elif spec.level == "material":
            out[name] = bool(_material_labels(spec, materials).notna().any())
        else:
            sites = materials["sites"].dropna().map(_parse_sites)
            out[name] = any(_element_labels(s, name) for s in sites)
    return out


