"""What ``specfusion calibrate`` and ``specfusion predict-xanes --calibrated`` do, as functions.

* :func:`read_measured_pairs` -- a user's measured spectra, each with the structure of its
  compound, from a folder (``<name>.<xdi|csv|dat|txt|xmu>`` next to ``<name>.cif``; the
  absorbing element is the XDI header's, else the structure's only transition metal) or from
  a CSV table with columns ``spectrum``, ``structure`` and optionally ``element`` (paths
  relative to the table).
* :func:`calibrate` -- fine-tunes the universal CGXAS model (the shipped checkpoint by
  default) on them with one variant of :mod:`.calibration` and writes the calibrated model as
  checkpoints with metadata (base model, variant, every file with its SHA-256).
* :func:`predict_calibrated` -- the calibrated model's spectrum of one structure.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np

from specfusion_lib.core.elements import is_transition_metal
from specfusion_lib.core.errors import ElementError, InputFileError
from specfusion_lib.data.snapshot import file_sha256
from specfusion_lib.xas_structure.calibration import (
    VARIANTS,
    CalibrationSettings,
    MeasuredSet,
    fit_calibration,
)
from specfusion_lib.xas_structure.cgxas import CGXASForward
from specfusion_lib.xas_structure.forward import GriddedXANES
from specfusion_lib.xas_structure.grid import N_GRID_POINTS, grid_window, to_grid_partial
from specfusion_lib.xas_structure.user import _read_structure

__all__ = ["DEFAULT_CALIBRATED", "SPECTRUM_SUFFIXES", "calibrate", "predict_calibrated",
           "read_measured_pairs"]

logger = logging.getLogger(__name__)

#: Where ``specfusion calibrate`` writes and ``predict-xanes --calibrated`` reads by default.
DEFAULT_CALIBRATED = Path("build/cgxas/calibrated.pt")
#: Spectrum files a measured folder may hold.
SPECTRUM_SUFFIXES = (".xdi", ".csv", ".dat", ".txt", ".xmu")


def _pairs_from_folder(folder: Path) -> list[tuple[Path, Path, str | None]]:
    pairs = []
    for spectrum in sorted(p for p in folder.iterdir() if p.suffix.lower() in SPECTRUM_SUFFIXES):
        cif = spectrum.with_suffix(".cif")
        if not cif.is_file():
            raise InputFileError(f"{spectrum}: no structure {cif.name} beside it (each "
                                 "spectrum needs the CIF of its compound, same name)")
        pairs.append((spectrum, cif, None))
    if not pairs:
        raise InputFileError(f"{folder}: no spectrum files ({', '.join(SPECTRUM_SUFFIXES)})")
    return pairs


def _pairs_from_table(table: Path) -> list[tuple[Path, Path, str | None]]:
    with open(table, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"spectrum", "structure"} <= set(rows[0]):
        raise InputFileError(f"{table}: needs columns 'spectrum' and 'structure' (and "
                             "optionally 'element')")
    out = []
    for line, row in enumerate(rows, start=2):
        spectrum, structure = table.parent / row["spectrum"], table.parent / row["structure"]
        for path in (spectrum, structure):
            if not path.is_file():
                raise InputFileError(f"{table}, line {line}: {path} does not exist")
        out.append((spectrum, structure, (row.get("element") or "").strip() or None))
    return out


def read_measured_pairs(source: str | Path) -> MeasuredSet:
    """Measured spectra with their structures, on the grid (see the module docstring).

    Raises:
        InputFileError: Missing folder/table/files, a spectrum without its structure, or a
            structure whose absorbing element is ambiguous (named).
        SpectrumError: A spectrum that does not cover enough of its element's grid (named).
    """
    from specfusion_lib.spectra.xanes_readers import read_xanes

    path = Path(source)
    if path.is_dir():
        pairs = _pairs_from_folder(path)
    elif path.is_file():
        pairs = _pairs_from_table(path)
    else:
        raise InputFileError(f"{path}: no such folder or table of measured spectra")
    keys, elements, structures, mus, covered = [], [], [], [], []
    for spectrum_path, structure_path, element in pairs:
        structure = _read_structure(structure_path)
        if element is None:
            header = read_xanes(spectrum_path, check=False).element
            tms = sorted({el.symbol for el in structure.composition
                          if is_transition_metal(el.symbol)})
            element = header or (tms[0] if len(tms) == 1 else None)
            if element is None:
                raise InputFileError(f"{spectrum_path}: cannot tell the absorbing element "
                                     f"({structure_path.name} holds {tms or 'no'} transition "
                                     "metals); give it in a table's 'element' column")
        if element not in {el.symbol for el in structure.composition}:
            raise ElementError(f"{structure_path}: {structure.composition.reduced_formula} "
                               f"holds no {element}")
        spectrum = read_xanes(spectrum_path, element=element)
        mu, inside = to_grid_partial(spectrum.energy, spectrum.mu, element,
                                     source=str(spectrum_path))
        keys.append(str(spectrum_path))
        elements.append(element)
        structures.append(structure)
        mus.append(mu)
        covered.append(inside)
    formulas = [s.composition.reduced_formula for s in structures]
    return MeasuredSet(np.array(keys, dtype=object), np.array(formulas, dtype=object),
                       np.array(elements, dtype=object), np.array(keys, dtype=object),
                       structures, np.array(mus, dtype=np.float32).reshape(-1, N_GRID_POINTS),
                       np.array(covered, dtype=bool).reshape(-1, N_GRID_POINTS))


def calibrate(source: str | Path, *, variant: str = "d_everything",
              model: str | Path | None = None, out: str | Path = DEFAULT_CALIBRATED,
              seed: int = 0) -> Path:
    """Calibrate the universal model on measured spectra and write it.

    Args:
        source: Folder or table of measured spectra with structures
            (:func:`read_measured_pairs`).
        variant: Calibration variant (:data:`~.calibration.VARIANTS`); the default is the
            variant notebook 15's nested leave-one-compound-out protocol chose most often on
            ``experiment.csv``.
        model: Universal-model checkpoint (default: the shipped one).
        out: Where the calibrated model goes (``.pt`` plus ``.json`` metadata).
        seed: Fine-tuning seed.

    Returns:
        The checkpoint path.

    Raises:
        InputFileError, SpectrumError, ElementError: Bad input (named).
        ValueError: Unknown variant.
    """
    from specfusion_lib.xas_structure.cgxas_study import SHIPPED_CHECKPOINT

    if variant not in VARIANTS:
        raise ValueError(f"unknown calibration variant {variant!r}; known: {VARIANTS}")
    base_path = Path(model) if model is not None else SHIPPED_CHECKPOINT
    base = CGXASForward.load(base_path)
    data = read_measured_pairs(source)
    unseen = sorted(set(data.element) - set(base.elements)) if base.elements else []
    if unseen:
        raise ElementError(f"the universal model never saw {', '.join(unseen)} K edges; "
                           "calibration cannot start from nothing")
    fitted = fit_calibration(base.model, data, variant, settings=CalibrationSettings(),
                             seed=seed)
    meta = {**base.metadata, "calibration": {
        "variant": variant, "seed": seed, "base_checkpoint": str(base_path),
        "base_sha256": file_sha256(base_path),
        "measured": [{"spectrum": key, "element": el, "formula": f}
                     for key, el, f in zip(data.key, data.element, data.formula, strict=True)],
        "measured_sha256": {key: file_sha256(key) for key in data.key}}}
    calibrated = CGXASForward(fitted.model, meta, fitted.energy)
    path = calibrated.save(out)
    logger.info("calibrated model (%s, %d spectra) written to %s", variant, len(data), path)
    return path


def predict_calibrated(structure_file: str | Path, element: str, *,
                       model: str | Path = DEFAULT_CALIBRATED) -> GriddedXANES:
    """The calibrated model's spectrum of ``element`` in a structure file.

    Raises:
        InputFileError: Missing structure or calibrated model (run ``specfusion calibrate``).
        ElementError: Element absent from the structure or unknown to the model.
    """
    if not Path(model).is_file():
        raise InputFileError(f"{model}: no calibrated model here; run `specfusion calibrate "
                             "--measured ...` first")
    structure = _read_structure(structure_file)
    if element not in {el.symbol for el in structure.composition}:
        raise ElementError(f"{structure_file}: {structure.composition.reduced_formula} holds no "
                           f"{element}")
    forward = CGXASForward.load(model)
    mu = forward.predict_structures([structure], element)[0]
    return GriddedXANES(element, grid_window(element).energies, mu)
