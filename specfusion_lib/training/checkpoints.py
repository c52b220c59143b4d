"""Checkpoints of every model: one file with weights and metadata, loading, and resuming.

A checkpoint is one ``.pt`` file holding the model class name, its constructor arguments
(``hparams``), the weights, a SHA-256 of the weights and the run's metadata (snapshot id and
file checksums, task, seed, profile, split ids, normalisation statistics, class names,
metrics, library and torch versions), plus a human-readable ``.json`` copy of the metadata
next to it. Both are written atomically (temporary file, then rename). :func:`load` reads the
``.pt`` with ``torch.load(weights_only=True)`` (no pickled code is executed) and raises
:class:`~specfusion_lib.core.errors.InputFileError` naming the file for a missing, truncated
or inconsistent checkpoint.

Resuming (:func:`load_matching_checkpoint`, the rule of every trainer): a finished run whose
checkpoint matches the snapshot, the seed, the profile, the split and the hyper-parameters is
loaded instead of retrained, so an interrupted multi-seed run does not redo finished seeds.

Model classes are found by name in :data:`MODEL_REGISTRY`; the package's own networks are
imported on first use, other classes are added with :func:`register_model`.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from specfusion_lib import __version__
from specfusion_lib.core.atomic import atomic_write, atomic_write_text
from specfusion_lib.core.errors import ConfigurationError, InputFileError
from specfusion_lib.core.profiles import Profile

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

__all__ = [
    "CHECKPOINT_FORMAT",
    "MODEL_REGISTRY",
    "checkpoint_file",
    "jsonable",
    "load",
    "load_matching_checkpoint",
    "metadata_path",
    "profile_metadata",
    "register_model",
    "save_checkpoint",
    "snapshot_metadata",
]

logger = logging.getLogger(__name__)

#: Identifier stored in every checkpoint; :func:`load` refuses other files.
CHECKPOINT_FORMAT = "specfusion-checkpoint"
_CHECKPOINT_VERSION = 1

#: Model classes :func:`load` can rebuild, by class name. Each takes its ``hparams`` as
#: keyword arguments.
MODEL_REGISTRY: dict[str, type[nn.Module]] = {}

#: The package's networks: class name -> module, imported when first needed.
_BUILTIN_MODELS = {
    "SpecFusionNet": "specfusion_lib.models.specfusionnet",
    "MultiTaskSpecFusionNet": "specfusion_lib.models.specfusionnet",
    "PXRDCrystalSystemNet": "specfusion_lib.models.pxrd_net",
    "FusedCrystalSystemNet": "specfusion_lib.models.pxrd_net",
    "XAStructHead": "specfusion_lib.xas_structure.forward",
    "CGXASNet": "specfusion_lib.xas_structure.cgxas",
    "EnergyCalibration": "specfusion_lib.xas_structure.calibration",
    "MNNDNet": "specfusion_lib.xas_structure.inverse",
    "NeighbourTypeNet": "specfusion_lib.xas_structure.inverse",
}


def register_model(cls: type[nn.Module]) -> type[nn.Module]:
    """Make a model class loadable by :func:`load` (usable as a class decorator).

    The class must expose its constructor arguments as a JSON-serialisable ``hparams``
    property.
    """
    MODEL_REGISTRY[cls.__name__] = cls
    return cls


def _model_class(name: str) -> type[nn.Module]:
    """The registered class ``name`` (importing a built-in network on first use)."""
    if name not in MODEL_REGISTRY and name in _BUILTIN_MODELS:
        MODEL_REGISTRY[name] = getattr(importlib.import_module(_BUILTIN_MODELS[name]), name)
    return MODEL_REGISTRY[name]


def checkpoint_file(checkpoint_dir: str | os.PathLike[str], *name_parts: str) -> Path:
    """``<checkpoint_dir>/<part>-<part>-....pt`` from the non-empty ``name_parts``.

    The one naming rule of every trainer, e.g. ``checkpoint_file(d, "band_gap", "",
    "seed0")`` is ``d/band_gap-seed0.pt``.
    """
    return Path(checkpoint_dir) / ("-".join(str(p) for p in name_parts if p) + ".pt")


def jsonable(obj: Any) -> Any:
    """``obj`` as plain JSON values (numpy scalars and arrays converted; NaN and inf → None).

    Raises:
        ConfigurationError: For a value that has no JSON form.
    """
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    if obj is None or isinstance(obj, str):
        return obj
    raise ConfigurationError(f"metadata value of type {type(obj).__name__} is not "
                             f"JSON-serialisable: {obj!r}")


def _state_sha256(state: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous().reshape(-1)
        digest.update(name.encode())
        digest.update(str(tensor.dtype).encode())
        digest.update(str(tuple(state[name].shape)).encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def metadata_path(path: str | os.PathLike[str]) -> Path:
    """The ``.json`` metadata file written next to checkpoint ``path``."""
    return Path(path).with_suffix(".json")


def full_metadata(model: nn.Module, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` plus versions, model class and hyper-parameters, JSON-normalised."""
    return jsonable({**metadata, "library_version": __version__,
                      "torch_version": torch.__version__, "model_class": type(model).__name__,
                      "hparams": getattr(model, "hparams", {})})


def save_checkpoint(path: str | os.PathLike[str], model: nn.Module,
                    metadata: Mapping[str, Any]) -> Path:
    """Write a checkpoint (``.pt``) and its metadata (``.json``) atomically.

    Args:
        path: Checkpoint file (conventionally ``*.pt``).
        model: A model of :data:`MODEL_REGISTRY` (anything with an ``hparams`` property).
        metadata: JSON-serialisable run metadata (numpy values are converted; NaN → null).
            ``library_version``, ``torch_version``, ``model_class`` and ``hparams`` are
            added.

    Returns:
        The checkpoint path.

    Raises:
        ConfigurationError: If the model class is not registered or metadata is not
            serialisable.
    """
    cls = type(model).__name__
    known = cls in MODEL_REGISTRY or cls in _BUILTIN_MODELS
    if not known or not hasattr(model, "hparams"):
        raise ConfigurationError(f"cannot checkpoint a {cls}: register it with register_model "
                                 "and give it an `hparams` property")
    meta = full_metadata(model, metadata)
    hparams = meta["hparams"]
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload = {
        "format": CHECKPOINT_FORMAT,
        "format_version": _CHECKPOINT_VERSION,
        "model_class": cls,
        "hparams_json": json.dumps(hparams),
        "metadata_json": json.dumps(meta),
        "state_sha256": _state_sha256(state),
        "state_dict": state,
    }
    target = Path(path)
    atomic_write(target, lambda handle: torch.save(payload, handle))
    text = json.dumps(meta, indent=2) + "\n"
    atomic_write_text(metadata_path(target), text)
    logger.info("checkpoint written: %s", target)
    return target


def load(path: str | os.PathLike[str], *,
         map_location: str | torch.device = "cpu") -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Args:
        path: The ``.pt`` file.
        map_location: Device for the weights (``"cpu"``, ``"cuda"``, ...).

    Returns:
        ``(model, metadata)``; the model is in eval mode on ``map_location``.

    Raises:
        InputFileError: If the file is missing, not a specfusion checkpoint, truncated or
            corrupted (weights checksum mismatch), or its weights do not fit its model.
    """
    target = Path(path)
    if not target.is_file():
        raise InputFileError(f"{target}: no such checkpoint file")
    try:
        payload = torch.load(target, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises various types for truncated or foreign files
        raise InputFileError(f"{target}: not a readable checkpoint "
                             f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise InputFileError(f"{target}: not a specfusion checkpoint")
    if payload.get("format_version") != _CHECKPOINT_VERSION:
        raise InputFileError(f"{target}: unsupported checkpoint format version "
                             f"{payload.get('format_version')!r}")
    try:
        cls = _model_class(payload["model_class"])
        hparams = json.loads(payload["hparams_json"])
        metadata = json.loads(payload["metadata_json"])
        state = payload["state_dict"]
    except KeyError as exc:
        raise InputFileError(f"{target}: checkpoint lacks {exc.args[0]!r} (or its model class "
                             "is not registered)") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(f"{target}: corrupted checkpoint metadata ({exc})") from None
    if _state_sha256(state) != payload.get("state_sha256"):
        raise InputFileError(f"{target}: weights do not match their SHA-256 (corrupted file)")
    try:
        model = cls(**hparams)
        model.load_state_dict(state, strict=True)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputFileError(f"{target}: weights do not fit a {cls.__name__}({hparams}) "
                             f"({exc})") from exc
    return model.to(map_location).eval(), metadata


def profile_metadata(prof: Profile, max_epochs: int) -> dict[str, Any]:
    """The profile entry of a checkpoint's metadata (compared when resuming)."""
    return {"name": prof.name, "max_epochs": int(max_epochs), "patience": prof.patience,
            "learning_rate": prof.learning_rate, "batch_size": prof.batch_size,
            "split": list(prof.split), "split_by": prof.split_by,
            "max_materials": prof.max_materials}


def snapshot_metadata(snapshot: Snapshot) -> dict[str, Any]:
    """Id, source, path and file checksums of the snapshot a model was trained on."""
    manifest = getattr(snapshot, "manifest", {}) or {}
    return {
        "id": getattr(snapshot, "snapshot_id", None),
        "source": manifest.get("source"),
        "path": str(getattr(snapshot, "path", "")),
        "files": {name: entry.get("sha256")
                  for name, entry in (manifest.get("files") or {}).items()},
    }


def load_matching_checkpoint(path: str | os.PathLike[str], snapshot: Snapshot,
                             expected: Mapping[str, Any],
                             hparams: Mapping[str, Any] | None = None
                             ) -> tuple[nn.Module, dict[str, Any]] | None:
    """Load a finished checkpoint only when it is the run that would be trained now.

    The resume rule of every trainer: same snapshot (id), and every ``expected`` metadata
    entry equal to the stored one after JSON conversion (seed, profile, split, ...); with
    ``hparams``, those hyper-parameters (a subset of the stored ones) must match too.

    Args:
        path: Checkpoint file.
        snapshot: The snapshot of the run (its ``snapshot_id`` is compared).
        expected: Metadata key -> value that must be stored.
        hparams: Hyper-parameters that must be stored with these values.

    Returns:
        ``(model, metadata)``, or ``None`` when the file is missing, unreadable or differs
        (the caller then trains afresh).
    """
    target = Path(path)
    if not target.is_file():
        return None
    try:
        model, meta = load(target)
    except InputFileError:
        return None
    if meta.get("snapshot", {}).get("id") != getattr(snapshot, "snapshot_id", None):
        return None
    if any(meta.get(k) != jsonable(v) for k, v in expected.items()):
        logger.info("%s: another run (seed, profile or split differ); training afresh", target)
        return None
    stored = meta.get("hparams") or {}
    if hparams is not None and any(stored.get(k) != v for k, v in jsonable(hparams).items()):
        logger.info("%s: other hyper-parameters than this run's; training afresh", target)
        return None
    logger.info("resuming from the finished checkpoint %s", target)
    return model, meta
