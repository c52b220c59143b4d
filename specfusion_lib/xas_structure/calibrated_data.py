"""Calibrated spectra as training data (issue: CGXAS deliverable 3).

The oxidation-state and CN models of notebook 11 learn from FEFF10 spectra and lose much of
their accuracy on measured ones. Here the universal model, calibrated on the measured spectra
of the **development half** of the measured compounds only (:mod:`.calibration`), predicts an
experiment-like spectrum for every TM K edge of the snapshot; those spectra replace FEFF's in
a derived snapshot (:func:`calibrated_snapshot`, same materials and labels), the notebook-11
models are trained on it exactly as on the original (same held-out compounds), and their
predictions on the measured spectra of the **scoring half** are compared with the models
trained on FEFF10 spectra (:func:`calibrated_training_study`). Nothing of the scoring half
enters the calibration, the training or any choice.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from specfusion_lib.core.elements import is_transition_metal
from specfusion_lib.data.snapshot import (
    LABEL_FIELDS,
    MaterialRecord,
    SpectrumRecord,
    load_snapshot,
    write_snapshot,
)
from specfusion_lib.xas_structure.calibration import (
    VARIANTS,
    Calibrated,
    choose_variant,
    fit_calibration,
    measured_set,
)
from specfusion_lib.xas_structure.cgxas import (
    CGXASNet,
    average_targets,
    build_graphs,
    predict_targets,
)
from specfusion_lib.xas_structure.grid import N_GRID_POINTS, grid_window

__all__ = ["CALIBRATED", "FEFF_TRAINED", "CalibratedTraining", "calibrated_snapshot",
           "calibrated_training_study", "feff_training_scores"]

logger = logging.getLogger(__name__)

#: ``variant`` of the score rows: models trained on calibrated / on FEFF10 spectra.
CALIBRATED = "calibrated spectra"
FEFF_TRAINED = "FEFF10 spectra"
#: The tasks compared.
TASKS = ("oxidation_state", "coordination_number")


def _material_records(snapshot) -> list[MaterialRecord]:
    out = []
    for row in snapshot.materials.itertuples(index=False):
        labels = {}
        for name in LABEL_FIELDS:
            value = getattr(row, name)
            if value is not None and not (isinstance(value, float) and np.isnan(value)):
                labels[name] = value.item() if hasattr(value, "item") else value
        sites = None if row.sites is None or (isinstance(row.sites, float)) else \
            json.loads(row.sites)
        out.append(MaterialRecord(str(row.material_id), snapshot.structure(row.material_id),
                                  labels, sites))
    return out


def calibrated_snapshot(snapshot, calibrated: Calibrated, out: str | os.PathLike[str], *,
                        description: str = "") -> Path:
    """A copy of ``snapshot`` whose TM K-edge spectra are ``calibrated``'s predictions.

    Every (material, TM) K edge of the snapshot's spectra table is predicted on the
    element's absolute grid (:mod:`.grid`); other spectra are left out. Materials and labels
    are copied unchanged.

    Returns:
        The written snapshot folder (overwritten if present).
    """
    spectra = snapshot.spectra
    rows = spectra[(spectra["edge"].astype(str) == "K")
                   & spectra["element"].map(is_transition_metal)]
    targets = average_targets(snapshot, rows["material_id"].tolist(), rows["element"].tolist(),
                              np.zeros((len(rows), N_GRID_POINTS), np.float32))
    graphs = build_graphs(snapshot, targets.material_id)
    pred = calibrated.apply(predict_targets(calibrated.model, graphs, targets),
                            list(targets.element))
    records = [SpectrumRecord(str(m), str(e), "K", grid_window(e).energies,
                              np.maximum(p, 0.0), source="cgxas:calibrated")
               for m, e, p in zip(targets.material_id, targets.element, pred, strict=True)]
    return write_snapshot(
        out, _material_records(snapshot), records, source=f"{snapshot.source}+cgxas",
        description=description or (
            f"{snapshot.path}: TM K-edge spectra replaced by the calibrated CGXAS model's "
            f"predictions ({calibrated.variant})"),
        label_sources=snapshot.manifest.get("label_sources", {}),
        extra={"derived_from": snapshot.snapshot_id, "calibration_variant": calibrated.variant},
        overwrite=True)


@dataclass
class CalibratedTraining:
    """Results of :func:`calibrated_training_study`.

    Attributes:
        snapshot: The derived snapshot (calibrated spectra).
        development: Measured records the calibration was fitted on.
        variant: The calibration variant used.
        inner_scores: Mean inner edge-energy error per variant (when it was chosen).
        structural: Score table (:func:`~specfusion_lib.measured.scores.structural_scores`)
            of the models trained on the calibrated spectra; ``variant`` is
            ``"calibrated spectra"``.
        compared: Their per-record comparison rows.
    """

    snapshot: object
    development: list[str]
    variant: str
    inner_scores: dict[str, float]
    structural: pd.DataFrame
    compared: pd.DataFrame


def calibrated_training_study(snapshot, records, halves, model: CGXASNet, profile,
                              checkpoint_dir: str | os.PathLike[str], *,
                              variant: str | None = None, seed: int = 0,
                              out: str | os.PathLike[str] = "build/cgxas/calibrated_snapshot",
                              calibration_settings=None) -> CalibratedTraining:
    """Calibrate on the development half, train notebook 11's oxidation-state and CN models
    on the calibrated spectra, and score them on the measured spectra (module docstring).

    Args:
        snapshot: The snapshot (its structures and labels).
        records: Every measured record.
        halves: The committed development / scoring halves.
        model: The pretrained universal model.
        profile: Training profile of the notebook-11 models.
        checkpoint_dir: Where their checkpoints go.
        variant: Calibration variant; ``None``: chosen by grouped cross-validation over the
            development half's compounds (mean edge-energy error), as the nested protocol
            chooses it.
        seed: Calibration seed.
        out: Folder of the derived snapshot.
        calibration_settings: :class:`~.calibration.CalibrationSettings` (default values).
    """
    from specfusion_lib.measured import study as measured_study
    from specfusion_lib.measured.scores import structural_scores
    from specfusion_lib.measured.study import match_measured
    from specfusion_lib.properties.features import build_features
    from specfusion_lib.xas_structure.calibration import CalibrationSettings

    development = [r for r in records if r.reduced_formula in set(halves.development)]
    data = measured_set(development, snapshot, match_measured(development, snapshot))
    settings = calibration_settings or CalibrationSettings()
    scores: dict[str, float] = {}
    if variant is None:
        variant, scores = choose_variant(model, data, VARIANTS, settings, seed)
    fitted = fit_calibration(model, data, variant, settings=settings, seed=seed)
    logger.info("calibrated on %d development-half spectra (%s; inner edge errors %s)",
                len(data), variant, {k: round(v, 2) for k, v in scores.items()})
    path = calibrated_snapshot(snapshot, fitted, out)
    derived = load_snapshot(path)
    features = build_features(derived)
    study = measured_study.run_measured_validation(
        derived, records, features, profile, checkpoint_dir,
        tasks=TASKS, variants=("baseline",))
    compared = study.compared.assign(variant=CALIBRATED)
    structural = structural_scores(compared, derived, halves,
                                   exclude_formulas=list(study.holdout.formulas))
    return CalibratedTraining(derived, [str(k) for k in data.key], variant, scores, structural,
                              compared)


def feff_training_scores(snapshot, records, halves, profile,
                         checkpoint_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """The same score table for notebook 11's baseline models (trained on FEFF10 spectra;
    finished checkpoints in ``checkpoint_dir/baseline`` are reused), ``variant`` =
    :data:`FEFF_TRAINED`."""
    from specfusion_lib.measured import study as measured_study
    from specfusion_lib.measured.scores import structural_scores
    from specfusion_lib.properties.features import build_features

    study = measured_study.run_measured_validation(
        snapshot, records, build_features(snapshot), profile, checkpoint_dir, tasks=TASKS,
        variants=("baseline",))
    return structural_scores(study.compared.assign(variant=FEFF_TRAINED), snapshot, halves,
                             exclude_formulas=list(study.holdout.formulas))
