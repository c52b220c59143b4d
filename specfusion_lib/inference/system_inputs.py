"""Crystal-system probabilities for the structure-inference benchmark from the peak model.

The search weighs crystal systems by the probabilities of a PXRD classifier. Notebook 07
found the peak-feature classifier (:mod:`specfusion_lib.crystal_system.peak_classifier`) the
one that holds on structures it never saw (chosen on the real validation part, 0.64 against
0.47 for the strained CNN-Transformer; 0.64 on the real-structure check, where the demo-only
CNN reaches 0.44). Its shipped model, however, was trained on
the demo's training *families*, a split drawn independently of the oxidation-state model's,
and so saw most of notebook 09's benchmark compounds (101 of 109 on the demo).
:func:`peak_model_probabilities` therefore trains the same model for the benchmark on the
same rows **without**

* every demo material of a benchmark compound's structure family
  (:func:`~specfusion_lib.data.families.snapshot_families`: no sibling of a target either),
* every real training structure with a benchmark compound's reduced formula,

and predicts the compounds' patterns with it. The model is saved under the checkpoint folder
with the digest of the excluded rows in its metadata and reused while snapshot, real files,
exclusions and settings match. Renders per structure follow the profile (smoke 1 with a
capped real set, quick 2, paper 5 as the shipped model).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from specfusion_lib.core.errors import InputFileError
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS
from specfusion_lib.spectra.pxrd import simulate_pattern

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = ["PEAK_RENDERS", "benchmark_exclusions", "peak_model_probabilities",
           "predict_systems"]

#: Renders per training structure of the benchmark's peak model, per profile.
PEAK_RENDERS: dict[str, int] = {"smoke": 1, "quick": 2, "paper": 5}
_SMOKE_REAL_CAP = 60


def benchmark_exclusions(snapshot: Snapshot, material_ids: Sequence[str]) -> set[str]:
    """Ids the benchmark's classifier must not train on (module docstring): the demo
    materials of the targets' families and the real training structures of their formulas."""
    from specfusion_lib.data.families import snapshot_families
    from specfusion_lib.data.real_structures import load_real_structures

    families = snapshot_families(snapshot)
    targets = {families[m] for m in material_ids if m in families}
    out = {m for m, f in families.items() if f in targets} | set(map(str, material_ids))
    m = snapshot.materials
    formulas = set(m.loc[m["material_id"].isin(list(material_ids)), "formula"].astype(str))
    real = load_real_structures("train")
    out |= {mid for mid, f in zip(real.material_ids, real.formulas, strict=True)
            if f in formulas}
    return out


def _matching(path: Path, checksums: dict[str, str], settings: dict[str, Any]) -> Any:
    from specfusion_lib.crystal_system.peak_classifier import PeakIndexingClassifier

    if not path.is_file():
        return None
    try:
        model = PeakIndexingClassifier.load(path)
    except InputFileError as exc:
        logger.info("benchmark peak model %s not reused: %s", path, exc)
        return None
    meta = model.metadata
    if meta.get("data_checksums") != checksums or meta.get("settings") != settings:
        logger.info("benchmark peak model %s was trained on other data or settings; "
                    "training again", path)
        return None
    return model


def peak_model_probabilities(
    snapshot: Snapshot, compounds: pd.DataFrame, profile: str, *, seed: int = 0,
    checkpoint_dir: str | os.PathLike[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None, progress: bool = False,
) -> tuple[pd.DataFrame, Any]:
    """Crystal-system probabilities of the benchmark compounds (module docstring).

    Args:
        snapshot: The snapshot of the compounds.
        compounds: :func:`~specfusion_lib.inference.benchmark.held_out_compounds`.
        profile: ``"smoke"``, ``"quick"`` or ``"paper"`` (renders, real-set cap).
        seed: Seed of the demo family split and of the model.
        checkpoint_dir: Where the model is saved and reused (None: not saved).
        cache_dir: Reflection / stick caches (as notebook 07).
        progress: Show progress bars.

    Returns:
        ``(probabilities, model)``: one row per compound (indexed by material id, one column
        per crystal system) from its simulated pattern, and the fitted
        :class:`~specfusion_lib.crystal_system.peak_classifier.PeakIndexingClassifier`.
    """
    from specfusion_lib.crystal_system import generalisation as gen
    from specfusion_lib.crystal_system.peak_classifier import PeakModelSettings, train_peak_model

    ids = [str(m) for m in compounds["material_id"]]
    if not ids:
        return pd.DataFrame(columns=list(CRYSTAL_SYSTEMS), dtype=float), None
    data = gen.real_pattern_data(
        snapshot, seed=seed, cache_dir=cache_dir, progress=progress,
        max_real_structures=_SMOKE_REAL_CAP if profile == "smoke" else None)
    data = gen.without_training_rows(data, benchmark_exclusions(snapshot, ids))
    settings = PeakModelSettings(renders=PEAK_RENDERS.get(profile, 5), seed=seed)
    settings_dict = {**asdict(settings), "strain": asdict(settings.strain)}
    path = (None if checkpoint_dir is None else Path(checkpoint_dir)
            / f"pxrd-crystal-system-peaks-inference-benchmark-seed{seed}.pkl")
    model = None if path is None else _matching(path, dict(data.checksums), settings_dict)
    if model is None:
        logger.info("training the benchmark's peak model (%d training rows, %d renders)",
                    len(data.y), settings.renders)
        model = train_peak_model(data, settings, path=path, progress=progress)
    return predict_systems(model, snapshot, ids), model


def predict_systems(model: Any, snapshot: Snapshot, material_ids: Sequence[str]
                    ) -> pd.DataFrame:
    """Crystal-system probabilities of some snapshot materials from their simulated
    patterns (indexed by material id, one column per system; empty without a model)."""
    ids = [str(m) for m in material_ids]
    if model is None or not ids:
        return pd.DataFrame(columns=list(CRYSTAL_SYSTEMS), dtype=float)
    table = model.predict_patterns([simulate_pattern(snapshot.structure(m)) for m in ids])
    return table.set_axis(pd.Index(ids, name="material_id"))
