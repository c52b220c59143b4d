"""Predict every property of a compound from its XANES spectra (user-facing).

::

    from specfusion_lib.properties.predict import predict_properties
    table = predict_properties({"Fe": "Fe.csv", "Ti": "Ti.csv"}, ["Fe", "Ti", "O"],
                               "build/checkpoints")

or ``specfusion predict --xanes Fe.csv --xanes Ti.csv --elements Fe Ti O [--json]``.

Models: every checkpoint ``<task>-seed<N>.pt`` of a checkpoint folder (as written by
notebooks 02 and 04 through :func:`specfusion_lib.properties.train.train_task`); checkpoints with a
tag (ablations) or of all-element models are ignored unless asked for. Several seeds of a task
are averaged (class probabilities, or values with their spread across seeds).

Checks, each with its own error type:

* a spectrum must show the absorption edge of the element it is given for
  (:func:`~specfusion_lib.spectra.xanes.check_edge`): :class:`WrongElementError` otherwise;
* every transition metal of the compound needs its spectrum (the models were trained with
  TM spectra): :class:`ConfigurationError` naming the missing ones;
* an element that no loaded model saw in its training materials raises
  :class:`ElementError`: the prediction would be an extrapolation with no data behind it.
  An element seen by some models but not by another is reported in that task's ``note``.
  The elements of the training materials are stored in each checkpoint's metadata
  (``training_elements``, written by :func:`specfusion_lib.properties.train.train_model`); for a
  checkpoint without them the check is skipped with a warning.
"""

from __future__ import annotations

import json
import math
import os
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from specfusion_lib.core.elements import TRANSITION_METALS, normalize_symbol
from specfusion_lib.core.errors import (
    ConfigurationError,
    ElementError,
    InputFileError,
    SpecfusionError,
    WrongElementError,
)
from specfusion_lib.properties.features import features_for_compound
from specfusion_lib.properties.train import predict
from specfusion_lib.spectra.xanes import ProcessedXANES, XANESSpectrum, check_edge
from specfusion_lib.spectra.xanes_readers import read_xanes
from specfusion_lib.training.checkpoints import load

__all__ = [
    "TRAINING_ELEMENTS_KEY",
    "LoadedModel",
    "Predictor",
    "assign_spectra",
    "predict_properties",
    "predictions_to_json",
]

#: Metadata key of the sorted element symbols of a checkpoint's training materials.
TRAINING_ELEMENTS_KEY = "training_elements"

_PLAIN = re.compile(r"^(?P<task>[a-z_]+)-seed(?P<seed>\d+)\.pt$")
_ALL_ELEMENT = re.compile(r"^(?P<task>[a-z_]+)-all-element-seed(?P<seed>\d+)\.pt$")


def _training_elements(meta: Mapping[str, Any], path: Path) -> frozenset[str] | None:
    stored = meta.get(TRAINING_ELEMENTS_KEY)
    if stored is not None:
        return frozenset(stored)
    warnings.warn(f"{path}: the checkpoint does not record its training elements; unseen "
                  "elements cannot be detected for this model", stacklevel=3)
    return None


@dataclass(frozen=True, eq=False)
class LoadedModel:
    """A checkpoint in memory.

    Attributes:
        task: Task name.
        seed: Training seed.
        path: The checkpoint file.
        model: The network (eval mode, CPU).
        metadata: The checkpoint's metadata.
        training_elements: Elements of the training materials (``None`` if unknown).
    """

    task: str
    seed: int
    path: Path
    model: nn.Module
    metadata: Mapping[str, Any]
    training_elements: frozenset[str] | None

    @property
    def kind(self) -> str:
        """``"classification"`` or ``"regression"``."""
        return str(self.metadata["task"]["kind"])

    @property
    def level(self) -> str:
        """``"material"`` or ``"element"``."""
        return str(self.metadata["task"]["level"])


def _as_spectrum(element: str, spectrum: XANESSpectrum | ProcessedXANES | str | os.PathLike[str],
                 edge: str) -> XANESSpectrum | ProcessedXANES:
    """Read / check one spectrum declared as ``element``'s.

    A :class:`~specfusion_lib.spectra.xanes.ProcessedXANES` (already preprocessed, e.g. with an
    explicit E0 by :class:`specfusion_lib.measured.domain_shift.E0TemplateAligner`) is only checked
    for its element and standardisation; its grid is checked against each model in
    :meth:`Predictor.predict`.
    """
    if isinstance(spectrum, ProcessedXANES):
        if spectrum.element is not None and spectrum.element != element:
            raise WrongElementError(f"a preprocessed {spectrum.element} spectrum "
                                    f"({spectrum.source or 'no source'}) was given as the "
                                    f"spectrum of {element}")
        if not spectrum.standardized:
            raise ConfigurationError(f"the preprocessed spectrum of {element} must be "
                                     "standardised (preprocess_xanes(standardize=True))")
        return spectrum
    if isinstance(spectrum, XANESSpectrum):
        if spectrum.element is not None and spectrum.element != element:
            raise WrongElementError(f"{spectrum.label} was given as the spectrum of {element}")
        spectrum = spectrum.replace(element=element)
        check_edge(spectrum, element=element, edge=spectrum.edge)
        return spectrum
    return read_xanes(spectrum, element=element, edge=edge)


def assign_spectra(paths: Sequence[str | os.PathLike[str]], elements: Sequence[str],
                   edge: str = "K") -> dict[str, XANESSpectrum]:
    """Match spectrum files to the compound's elements by their absorption edge.

    A path written ``El=path`` (``Fe=sample.csv``) is read as ``El``'s spectrum; any other
    path is assigned to the one element of ``elements`` whose tabulated edge the data show
    (an XDI header naming the element is used and checked as well).

    Args:
        paths: Spectrum files (two-column, CSV or XDI).
        elements: The compound's element symbols.
        edge: Absorption edge.

    Returns:
        Element → checked spectrum.

    Raises:
        WrongElementError: A file shows no edge of any of ``elements``, or an ``El=`` file
            shows another element's edge.
        ConfigurationError: Two files for the same element, or ``El=`` with an element not
            in ``elements``.
        SpectrumFileError: A file cannot be read.
        ElementError: An unknown element symbol.
    """
    symbols = [normalize_symbol(e) for e in elements]
    out: dict[str, XANESSpectrum] = {}
    for item in paths:
        text = str(item)
        element, _, rest = text.partition("=")
        if rest and re.fullmatch(r"[A-Za-z]{1,2}", element):
            el = normalize_symbol(element)
            if el not in symbols:
                raise ConfigurationError(f"{rest}: given for {el}, which is not among the "
                                         f"elements {' '.join(symbols)}")
            spectrum = read_xanes(rest, element=el, edge=edge)
        else:
            raw = read_xanes(text, edge=edge, check=False)
            if raw.element is not None:
                el = raw.element
                check_edge(raw)
            else:
                matches = []
                for candidate in symbols:
                    try:
                        check_edge(raw, element=candidate, edge=edge)
                    except SpecfusionError:
                        continue
                    matches.append(candidate)
                if len(matches) != 1:
                    what = ("matches none" if not matches
                            else f"matches several ({' '.join(matches)})")
                    raise WrongElementError(
                        f"{text}: the spectrum's absorption edge {what} of the {edge} edges "
                        f"of {' '.join(symbols)}; name its element explicitly as El={text}")
                el = matches[0]
            spectrum = raw.replace(element=el)
            if el not in symbols:
                raise WrongElementError(f"{text}: a {el} spectrum, but {el} is not among "
                                        f"the elements {' '.join(symbols)}")
        if el in out:
            raise ConfigurationError(f"two spectra given for {el}: {out[el].source} and "
                                     f"{spectrum.source}")
        out[el] = spectrum
    return out


def _processed_values(spectrum: ProcessedXANES, element: str, window: Sequence[float],
                      n_points: int) -> np.ndarray:
    """The values of a preprocessed spectrum, checked against a model's window and points."""
    lo, hi = float(window[0]), float(window[1])
    if (spectrum.grid.size != int(n_points) or not np.isclose(spectrum.grid[0], lo)
            or not np.isclose(spectrum.grid[-1], hi)):
        raise ConfigurationError(
            f"the preprocessed spectrum of {element} has {spectrum.grid.size} points on "
            f"{spectrum.grid[0]:g}..{spectrum.grid[-1]:g} eV; the model needs {n_points} points "
            f"on {lo:g}..{hi:g} eV")
    return np.asarray(spectrum.values, dtype=np.float64)


class Predictor:
    """Loaded property models, ready to predict one compound after another.

    Load once (:meth:`from_dir`), then call :meth:`predict` per compound; loading dominates
    the cost of a single :func:`predict_properties` call.
    """

    def __init__(self, models: Sequence[LoadedModel]) -> None:
        if not models:
            raise ConfigurationError("a Predictor needs at least one model")
        self.models = list(models)

    @classmethod
    def from_dir(cls, checkpoint_dir: str | os.PathLike[str],
                 tasks: Sequence[str] | None = None, *,
                 all_element: bool = False) -> Predictor:
        """Load every ``<task>-seed<N>.pt`` (or ``<task>-all-element-seed<N>.pt``) checkpoint.

        Args:
            checkpoint_dir: Folder of checkpoints (notebooks 02 and 04 write
                ``build/checkpoints``).
            tasks: Load only these tasks (each must have a checkpoint).
            all_element: Load the all-element models (Fig. 2h) instead of the TM-only ones.

        Raises:
            InputFileError: The folder is missing, holds no checkpoint, or a checkpoint is
                unreadable.
            ConfigurationError: A requested task has no checkpoint.
        """
        root = Path(checkpoint_dir)
        if not root.is_dir():
            raise InputFileError(f"{root}: no such checkpoint folder; train the models first "
                                 "(notebooks 02 and 04 write build/checkpoints)")
        pattern = _ALL_ELEMENT if all_element else _PLAIN
        found = sorted((m.group("task"), int(m.group("seed")), p)
                       for p in root.glob("*.pt") if (m := pattern.match(p.name)))
        if tasks is not None:
            wanted = list(dict.fromkeys(tasks))
            missing = sorted(set(wanted) - {t for t, _, _ in found})
            if missing:
                raise ConfigurationError(
                    f"{root}: no checkpoint for task(s) {', '.join(missing)}; available: "
                    f"{', '.join(sorted({t for t, _, _ in found})) or 'none'}")
            found = [f for f in found if f[0] in wanted]
        if not found:
            raise InputFileError(f"{root}: no model checkpoints (<task>-seed<N>.pt) found")
        models = []
        for task, seed, path in found:
            model, meta = load(path)
            if meta["task"]["name"] != task:
                raise InputFileError(f"{path}: file name says task {task!r}, metadata says "
                                     f"{meta['task']['name']!r}")
            models.append(LoadedModel(task, seed, path, model, meta,
                                      _training_elements(meta, path)))
        return cls(models)

    @property
    def tasks(self) -> list[str]:
        """Tasks of the loaded models, in load order."""
        return list(dict.fromkeys(m.task for m in self.models))

    def seen_elements(self) -> frozenset[str] | None:
        """Elements seen in training by at least one model (``None`` if none is known)."""
        known = [m.training_elements for m in self.models if m.training_elements is not None]
        return frozenset().union(*known) if known else None

    def _inputs(self, spectra: Mapping[str, XANESSpectrum | str | os.PathLike[str]],
                elements: Sequence[str]) -> tuple[tuple[str, ...], dict[str, XANESSpectrum]]:
        symbols = tuple(normalize_symbol(e) for e in elements)
        if len(set(symbols)) != len(symbols):
            raise ConfigurationError(f"elements must be given once each, got {symbols}")
        edge = str(self.models[0].metadata["normalization"]["spectra"]["edge"])
        checked: dict[str, XANESSpectrum] = {}
        for el, spectrum in spectra.items():
            el = normalize_symbol(el)
            if el not in symbols:
                raise ConfigurationError(f"a spectrum was given for {el}, which is not among "
                                         f"the elements {' '.join(symbols)}")
            checked[el] = _as_spectrum(el, spectrum, edge)
        missing = [e for e in symbols if e in TRANSITION_METALS and e not in checked]
        if missing:
            raise ConfigurationError(
                f"no spectrum given for the transition metal(s) {' '.join(missing)}; the "
                "models read one K-edge XANES per transition metal")
        seen = self.seen_elements()
        if seen is not None:
            unseen = [e for e in symbols if e not in seen]
            if unseen:
                raise ElementError(
                    f"the models never saw {' '.join(unseen)} in their training materials "
                    f"(seen: {' '.join(sorted(seen))}); a prediction would be an "
                    "extrapolation without data behind it")
        return symbols, checked

    def predict(self, spectra: Mapping[str, XANESSpectrum | ProcessedXANES | str
                                       | os.PathLike[str]],
                elements: Sequence[str]) -> pd.DataFrame:
        """Predict every loaded property of one compound.

        Args:
            spectra: Element → spectrum (a :class:`XANESSpectrum`, a file path, or a
                :class:`~specfusion_lib.spectra.xanes.ProcessedXANES` already preprocessed
                on the models' window, e.g. with an explicit E0).
            elements: Every element of the compound.

        Returns:
            One row per task (per TM element for element-level tasks): ``task``,
            ``element`` ("" for material-level tasks), ``kind``, ``prediction`` (class name
            or value), ``unit``, ``probability`` (of the predicted class), ``std`` (spread
            over seeds of a regression value; NaN for one seed), ``probabilities`` (class →
            probability), ``n_models``, ``note`` (e.g. an element this model did not see).

        Raises:
            WrongElementError: A spectrum shows another element's edge.
            SpectrumError: A spectrum's range misses its element's edge.
            SpectrumFileError: A spectrum file is malformed.
            ElementError: An unknown element, or one no model saw in training.
            ConfigurationError: A TM without spectrum, or a spectrum for an element not in
                ``elements``.
        """
        symbols, checked = self._inputs(spectra, elements)
        cache: dict[tuple[Any, ...], Any] = {}
        by_task: dict[str, list[LoadedModel]] = {}
        for m in self.models:
            by_task.setdefault(m.task, []).append(m)
        rows: list[dict[str, Any]] = []
        for models in by_task.values():
            outs = []
            for m in models:
                spec = m.metadata["normalization"]["spectra"]
                key = (tuple(spec["window_ev"]), int(spec["n_points"]), bool(spec["all_element"]))
                if key not in cache:
                    inputs = {el: _processed_values(sp, el, key[0], key[1])
                              if isinstance(sp, ProcessedXANES) else sp
                              for el, sp in checked.items()}
                    cache[key] = features_for_compound(symbols, inputs, window=key[0],
                                                       n_points=key[1], all_element=key[2])
                outs.append(predict(m.model, cache[key], m.metadata))
            unseen = sorted({e for m in models if m.training_elements is not None
                             for e in symbols if e not in m.training_elements})
            note = (f"not in this model's training materials: {' '.join(unseen)}"
                    if unseen else "")
            rows.extend(_rows(models[0], np.stack(outs), symbols, note))
        return pd.DataFrame(rows, columns=["task", "element", "kind", "prediction", "unit",
                                           "probability", "std", "probabilities", "n_models",
                                           "note"])


def _rows(model: LoadedModel, outs: np.ndarray, symbols: tuple[str, ...],
          note: str) -> list[dict[str, Any]]:
    """Table rows of one task from the stacked outputs of its seeds (``(S, 1, ...)``)."""
    task = model.metadata["task"]
    base = {"task": model.task, "kind": model.kind, "unit": task.get("unit", ""),
            "n_models": int(outs.shape[0]), "note": note}
    if model.kind == "regression":
        values = outs[:, 0].astype(float)
        std = float(values.std(ddof=1)) if len(values) > 1 else math.nan
        return [{**base, "element": "", "prediction": float(values.mean()),
                 "probability": math.nan, "std": std, "probabilities": {}}]
    classes = list(task["class_names"])
    probs = outs.mean(axis=0)[0]  # (C,) or (E, C)

    def row(element: str, p: np.ndarray) -> dict[str, Any]:
        k = int(np.argmax(p))
        return {**base, "element": element, "prediction": classes[k],
                "probability": float(p[k]), "std": math.nan,
                "probabilities": {c: round(float(v), 4) for c, v in zip(classes, p,
                                                                          strict=True)}}

    if model.level == "element":
        return [row(el, probs[j]) for j, el in enumerate(symbols) if el in TRANSITION_METALS]
    return [row("", probs)]


def predict_properties(
    spectra: Mapping[str, XANESSpectrum | str | os.PathLike[str]],
    elements: Sequence[str],
    checkpoint_dir: str | os.PathLike[str] = "build/checkpoints",
    tasks: Sequence[str] | None = None,
    *,
    all_element: bool = False,
) -> pd.DataFrame:
    """Predict every property of one compound from its XANES spectra.

    Loads the checkpoints (:meth:`Predictor.from_dir`) and predicts
    (:meth:`Predictor.predict`); to predict many compounds, build a :class:`Predictor` once.

    Args:
        spectra: Element → :class:`~specfusion_lib.spectra.xanes.XANESSpectrum` or file path.
        elements: Every element of the compound (``["Fe", "Ti", "O"]``).
        checkpoint_dir: Folder of checkpoints.
        tasks: Only these tasks (default: every task with a checkpoint).
        all_element: Use the all-element models.

    Returns:
        See :meth:`Predictor.predict`.

    Raises:
        InputFileError: Missing folder or no checkpoints.
        WrongElementError: A spectrum of the wrong element.
        ElementError: An element the models never saw in training, or an unknown symbol.
        ConfigurationError: A requested task without checkpoint, a TM without spectrum.
    """
    return Predictor.from_dir(checkpoint_dir, tasks, all_element=all_element).predict(
        spectra, elements)


def predictions_to_json(table: pd.DataFrame, **extra: Any) -> str:
    """The prediction table as JSON: ``{"predictions": [...], **extra}`` (NaN → null)."""

    def clean(value: Any) -> Any:
        if isinstance(value, float | np.floating):
            return float(value) if math.isfinite(value) else None
        if isinstance(value, np.integer):
            return int(value)
        return value

    records = [{k: clean(v) for k, v in rec.items()} for rec in table.to_dict("records")]
    return json.dumps({**extra, "predictions": records}, indent=2, ensure_ascii=False)
