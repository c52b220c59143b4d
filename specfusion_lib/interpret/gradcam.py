"""Grad-CAM of SpecFusionNet's spectrum encoder through captum (main text Fig. 3d–f, SI S15, S16).

Which energy points of a compound's XANES drive a prediction? Grad-CAM (Selvaraju et al.,
ICCV 2017) answers this for convolutional layers; the paper applies it "to the final
convolutional layers" (SI §S1.2). Method, as computed by :func:`grad_cam`:

1. The target is one output of the network: the logit of a chosen class (default: the
   predicted class) for classification, the (standardised) predicted value for regression.
2. For each of the three convolution branches of
   :class:`~specfusion_lib.models.specfusionnet.MultiScaleSpectrumEncoder` (kernel sizes 3, 7,
   15) captum's ``LayerGradCam`` takes the activations ``A_c(x)`` of the branch's *last*
   convolution (``spectrum_encoder.last_conv_layers()``; 100 positions after the first
   max-pool), averages the gradient of the target over the positions to one weight ``w_c``
   per channel, and forms ``ReLU(Σ_c w_c A_c(x))``: the positions whose features push the
   target *up*. For regression that means "towards a larger predicted value".
3. Each branch's map is upsampled linearly to the 200-point input grid
   (``LayerAttribution.interpolate``) and the three branches are summed.
4. The maps of all spectra of one compound are normalised *together* by their common maximum
   (values in [0, 1]), so spectra of one compound stay comparable: when the model relies on
   the Y K-edge and hardly on the Ti K-edge (Fig. 3e), the Ti map stays low.

Only spectra the model reads get a map: padded entries and, for TM-only models, non-TM
spectra are never encoded and have zero attribution. A batch of compounds is attributed in
one pass: SpecFusionNet has no batch normalisation and attention stays within a compound, so
the gradient of compound *b*'s output reaches only compound *b*'s activations (tested).

Regions (:data:`REGIONS`, eV relative to E0, the derivative maximum used by
:func:`~specfusion_lib.spectra.xanes.preprocess_xanes`; the window is
:data:`~specfusion_lib.spectra.xanes.WINDOW_EV`):

* pre-edge: E0 − 10 … E0 − 2 eV (1s → 3d quadrupole / 3d–4p hybridised transitions);
* edge: E0 − 2 … E0 + 10 eV (rising edge and white line: 1s → 4p, the edge position);
* post-edge: E0 + 10 … E0 + 46 eV (multiple-scattering resonances of the neighbour shells).

:func:`region_attention` integrates a map over each region (rectangle rule on the uniform
grid, attention · eV); :meth:`GradCAMResult.regions` reports the integral, its share of the
spectrum and of the compound, and the mean attention per eV (the regions differ in width: 8,
12 and 36 eV).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from captum.attr import LayerAttribution, LayerGradCam
from torch import Tensor, nn

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.properties.features import FeatureSet
from specfusion_lib.spectra.xanes import WINDOW_EV

__all__ = [
    "REGIONS",
    "GradCAMResult",
    "compound_tensors",
    "grad_cam",
    "grad_cam_by_task",
    "model_outputs",
    "region_attention",
    "region_caption",
    "region_summary",
    "region_table",
    "spectrum_grid",
    "held_out_rows",
    "held_out_region_table",
    "used_spectra",
]

#: Energy regions relative to E0 (eV): name → (start, end). Points are assigned to the region
#: with ``start <= E − E0 < end``; the last region also takes its end point.
REGIONS: dict[str, tuple[float, float]] = {
    "pre-edge": (-10.0, -2.0),
    "edge": (-2.0, 10.0),
    "post-edge": (10.0, 46.0),
}

_BATCH = 64


def region_caption(regions: Mapping[str, tuple[float, float]] = REGIONS) -> str:
    """The region definition as one line for figure captions."""

    def edge(v: float) -> str:
        return "E0" if v == 0 else f"E0{'+' if v > 0 else '−'}{abs(v):g}"

    return "; ".join(f"{name}: {edge(lo)}…{edge(hi)} eV" for name, (lo, hi) in regions.items())


def spectrum_grid(features: FeatureSet) -> np.ndarray:
    """Energies (eV relative to E0) of the ``L`` points of ``features``' spectra."""
    lo, hi = features.window
    return np.linspace(lo, hi, features.n_points)


def _region_masks(grid: np.ndarray, regions: Mapping[str, tuple[float, float]]) -> np.ndarray:
    """``(R, L)`` bool: which grid points belong to which region."""
    masks = np.zeros((len(regions), grid.size), dtype=bool)
    items = list(regions.values())
    for r, (lo, hi) in enumerate(items):
        if not lo < hi:
            raise ConfigurationError(f"region {list(regions)[r]!r} has start {lo} >= end {hi}")
        masks[r] = (grid >= lo) & (grid < hi)
        if r == len(items) - 1:
            masks[r] |= np.isclose(grid, hi)
    return masks


def region_attention(attribution: np.ndarray, grid: np.ndarray,
                     regions: Mapping[str, tuple[float, float]] = REGIONS) -> np.ndarray:
    """Integrate attribution maps over energy regions.

    Method: rectangle rule on the uniform grid, ``Σ_{i in region} a_i · ΔE`` with ``ΔE`` the
    grid spacing, so the regions' integrals add up to the integral over the covered window.

    Args:
        attribution: ``(..., L)`` maps.
        grid: ``(L,)`` energies relative to E0 (eV), uniformly spaced.
        regions: Region name → (start, end) in eV relative to E0.

    Returns:
        ``(..., R)`` integrals (attention · eV), regions in the order of ``regions``.
    """
    grid = np.asarray(grid, dtype=float)
    attribution = np.asarray(attribution, dtype=float)
    if attribution.shape[-1] != grid.size:
        raise ConfigurationError(f"attribution has {attribution.shape[-1]} points, the grid "
                                 f"{grid.size}")
    step = float(np.mean(np.diff(grid))) if grid.size > 1 else 1.0
    masks = _region_masks(grid, regions).astype(float)
    return attribution @ masks.T * step


@dataclass(frozen=True, eq=False)
class GradCAMResult:
    """Grad-CAM maps of the spectra of one compound for one target.

    Attributes:
        material_id: The compound.
        task: Task name ("" if not known).
        kind: ``"classification"`` or ``"regression"``.
        target: Output index attributed (class index; 0 for regression).
        target_name: Class name, or ``"value"`` for regression.
        prediction: Predicted value (target units when the metadata give the standardisation)
            or the probability of ``target``.
        elements: The ``S`` elements whose spectra the model read, in the compound's order.
        grid: ``(L,)`` energies relative to E0 (eV).
        spectra: ``(S, L)`` the input spectra (standardised μ).
        attribution: ``(S, L)`` maps in [0, 1], normalised by the compound's maximum.
        raw_attribution: ``(S, L)`` maps before normalisation (sum over the branches).
    """

    material_id: str
    task: str
    kind: str
    target: int
    target_name: str
    prediction: float
    elements: tuple[str, ...]
    grid: np.ndarray
    spectra: np.ndarray
    attribution: np.ndarray
    raw_attribution: np.ndarray

    def regions(self, regions: Mapping[str, tuple[float, float]] = REGIONS) -> pd.DataFrame:
        """Region-integrated attention of each spectrum.

        Returns:
            One row per (element, region): ``material_id``, ``task``, ``element``,
            ``region``, ``start_ev``, ``end_ev``, ``integral`` (normalised attention · eV),
            ``share_of_spectrum`` (of that spectrum's integral), ``share_of_compound`` (of
            the integral over every spectrum of the compound), ``mean_per_ev``.
        """
        integrals = region_attention(self.attribution, self.grid, regions)  # (S, R)
        per_spectrum = integrals.sum(axis=1, keepdims=True)
        total = float(integrals.sum())
        rows = []
        for s, element in enumerate(self.elements):
            for r, (name, (lo, hi)) in enumerate(regions.items()):
                value = float(integrals[s, r])
                rows.append({
                    "material_id": self.material_id, "task": self.task, "element": element,
                    "region": name, "start_ev": lo, "end_ev": hi, "integral": value,
                    "share_of_spectrum": (value / per_spectrum[s, 0] if per_spectrum[s, 0] > 0
                                          else np.nan),
                    "share_of_compound": value / total if total > 0 else np.nan,
                    "mean_per_ev": value / (hi - lo),
                })
        return pd.DataFrame(rows)


def used_spectra(model: nn.Module, element_mask: Tensor, tm_mask: Tensor,
                 spectrum_mask: Tensor) -> Tensor:
    """Which spectra the model's encoder reads: ``(B, E)`` bool.

    Mirrors :class:`~specfusion_lib.models.specfusionnet.SpecFusionEncoder`: real elements
    with a spectrum, restricted to TMs unless the model is an all-element model.
    """
    element_mask = element_mask.bool()
    use = spectrum_mask.bool() & element_mask
    if not model.encoder.all_element:
        use = use & tm_mask.bool() & element_mask
    return use


def compound_tensors(features: FeatureSet, rows: np.ndarray,
                     device: torch.device) -> tuple[Tensor, ...]:
    """Model inputs (descriptors, element, TM, spectra, spectrum masks) of ``rows``."""
    return (
        torch.as_tensor(features.descriptors[rows], dtype=torch.float32, device=device),
        torch.as_tensor(features.element_mask[rows], device=device),
        torch.as_tensor(features.tm_mask[rows], device=device),
        torch.as_tensor(features.spectra[rows], dtype=torch.float32, device=device),
        torch.as_tensor(features.spectrum_mask[rows], device=device),
    )


def _check_model(model: nn.Module, features: FeatureSet,
                 metadata: Mapping[str, Any] | None) -> str:
    """Validate model and features; return the task kind."""
    if not hasattr(model, "encoder") or not hasattr(model, "n_outputs"):
        raise ConfigurationError(f"Grad-CAM needs a single-task SpecFusionNet, got "
                                 f"{type(model).__name__}")
    if getattr(model, "element_level", False):
        raise ConfigurationError("Grad-CAM is implemented for material-level tasks; "
                                 "element-level models (oxidation state, CN) are not supported")
    if model.encoder.spectrum_encoder.n_points != features.n_points:
        raise ConfigurationError(f"features have {features.n_points} points per spectrum, the "
                                 f"model expects {model.encoder.spectrum_encoder.n_points}")
    if metadata is not None:
        spectra = metadata["normalization"]["spectra"]
        if tuple(spectra["window_ev"]) != tuple(features.window):
            raise ConfigurationError(f"features are on window {features.window} eV, the model "
                                     f"was trained on {tuple(spectra['window_ev'])} eV")
        return str(metadata["task"]["kind"])
    return "regression" if model.n_outputs == 1 else "classification"


def model_outputs(model: nn.Module, inputs: Sequence[Tensor], kind: str, target: Tensor,
                  metadata: Mapping[str, Any] | None = None) -> Tensor:
    """The quantity Grad-CAM and the deletion curves follow, per compound: ``(B,)``.

    Regression: the predicted value (in the target's unit when ``metadata`` holds the
    standardisation). Classification: the probability of class ``target`` (``(B,)`` long).
    """
    with torch.no_grad():
        out = model(*inputs)
    if kind == "regression":
        value = out[:, 0]
        stats = (metadata or {}).get("normalization", {}).get("target")
        if stats:
            value = value * float(stats["std"]) + float(stats["mean"])
        return value
    return torch.softmax(out, dim=-1).gather(1, target.view(-1, 1))[:, 0]


def grad_cam(
    model: nn.Module,
    features: FeatureSet,
    indices: Sequence[int] | np.ndarray | None = None,
    *,
    metadata: Mapping[str, Any] | None = None,
    target: int | None = None,
    layers: Sequence[nn.Module] | None = None,
    batch_size: int = _BATCH,
) -> list[GradCAMResult]:
    """Grad-CAM maps of every spectrum of the selected compounds (see the module docstring).

    Args:
        model: A trained material-level
            :class:`~specfusion_lib.models.specfusionnet.SpecFusionNet`.
        features: Inputs (the same window and points the model was trained on).
        indices: Rows of ``features`` (default: all).
        metadata: The run's metadata (:func:`specfusion_lib.training.checkpoints.load`,
            ``TrainResult.metadata``): task name and kind, class names and the target
            standardisation. Without it, a one-output model counts as regression.
        target: Class index to attribute (classification; default: each compound's predicted
            class). Ignored for regression (output 0).
        layers: Layers to attribute (default: the last convolution of each branch).
        batch_size: Compounds per backward pass.

    Returns:
        One :class:`GradCAMResult` per selected compound, in the order of ``indices``.

    Raises:
        ConfigurationError: For an element-level or multi-task model, features that do not
            fit the model, or a class index out of range.
    """
    kind = _check_model(model, features, metadata)
    rows_all = (np.arange(len(features)) if indices is None
                else np.asarray(indices, dtype=np.int64).reshape(-1))
    n_classes = int(model.n_outputs)
    if kind == "classification" and target is not None and not 0 <= int(target) < n_classes:
        raise ConfigurationError(f"class index {target} out of range 0..{n_classes - 1}")
    task = str(metadata["task"]["name"]) if metadata else ""
    class_names = tuple(metadata["task"].get("class_names", ())) if metadata else ()
    target_layers = (list(model.encoder.spectrum_encoder.last_conv_layers()) if layers is None
                     else list(layers))
    device = next(model.parameters()).device
    grid = spectrum_grid(features)
    n_points = features.n_points
    was_training = model.training
    model.eval()

    def forward(spectra: Tensor, descriptors: Tensor, element_mask: Tensor, tm_mask: Tensor,
                spectrum_mask: Tensor) -> Tensor:
        return model(descriptors, element_mask, tm_mask, spectra, spectrum_mask)

    results: list[GradCAMResult] = []
    try:
        for start in range(0, len(rows_all), batch_size):
            rows = rows_all[start:start + batch_size]
            desc, elem, tm, spec, smask = compound_tensors(features, rows, device)
            with torch.no_grad():
                out = model(desc, elem, tm, spec, smask)
            if kind == "regression":
                targets = torch.zeros(len(rows), dtype=torch.long, device=device)
            elif target is None:
                targets = out.argmax(dim=-1)
            else:
                targets = torch.full((len(rows),), int(target), dtype=torch.long, device=device)
            used = used_spectra(model, elem, tm, smask)
            maps = torch.zeros(len(rows), features.max_elements, n_points, device=device)
            if bool(used.any()):
                total = torch.zeros(int(used.sum()), n_points, device=device)
                for layer in target_layers:
                    cam = LayerGradCam(forward, layer).attribute(
                        spec, target=targets, additional_forward_args=(desc, elem, tm, smask),
                        relu_attributions=True)
                    if cam.shape[0] != total.shape[0]:
                        raise ConfigurationError(
                            f"layer {layer} produced {cam.shape[0]} maps for "
                            f"{total.shape[0]} encoded spectra; attribute the last "
                            "convolutions of the spectrum encoder")
                    up = LayerAttribution.interpolate(cam.detach(), (n_points,),
                                                      interpolate_mode="linear")
                    total = total + up.reshape(up.shape[0], n_points)
                maps[used] = total
            values = model_outputs(model, (desc, elem, tm, spec, smask), kind, targets,
                                   metadata).cpu().numpy()
            maps_np = maps.cpu().numpy().astype(np.float64)
            used_np = used.cpu().numpy()
            for b, row in enumerate(rows):
                cols = np.flatnonzero(used_np[b])
                raw = maps_np[b, cols]
                peak = float(raw.max()) if raw.size else 0.0
                t = int(targets[b])
                results.append(GradCAMResult(
                    material_id=features.material_ids[row], task=task, kind=kind, target=t,
                    target_name=("value" if kind == "regression" else
                                 class_names[t] if t < len(class_names) else str(t)),
                    prediction=float(values[b]),
                    elements=tuple(features.elements[row][j] for j in cols),
                    grid=grid, spectra=features.spectra[row, cols].astype(np.float64),
                    attribution=raw / peak if peak > 0 else np.zeros_like(raw),
                    raw_attribution=raw))
    finally:
        model.train(was_training)
    return results


def region_table(results: Sequence[GradCAMResult],
                 regions: Mapping[str, tuple[float, float]] = REGIONS) -> pd.DataFrame:
    """:meth:`GradCAMResult.regions` of several results, stacked."""
    frames = [r.regions(regions) for r in results if r.elements]
    if not frames:
        return pd.DataFrame(columns=["material_id", "task", "element", "region", "start_ev",
                                     "end_ev", "integral", "share_of_spectrum",
                                     "share_of_compound", "mean_per_ev"])
    return pd.concat(frames, ignore_index=True)


def region_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean share of attention per task and region over many spectra.

    Args:
        table: :func:`region_table` of (for instance) every test compound of each task.

    Returns:
        One row per (task, region): ``n_spectra``, ``share_mean``, ``share_std`` (share of
        each spectrum's attention in the region), ``mean_per_ev`` (average attention per eV).
    """
    if table.empty:
        return pd.DataFrame(columns=["task", "region", "n_spectra", "share_mean", "share_std",
                                     "mean_per_ev"])
    order = {name: i for i, name in enumerate(dict.fromkeys(table["region"]))}
    out = (table.groupby(["task", "region"], sort=False)
           .agg(n_spectra=("share_of_spectrum", "count"),
                share_mean=("share_of_spectrum", "mean"),
                share_std=("share_of_spectrum", "std"),
                mean_per_ev=("mean_per_ev", "mean"))
           .reset_index())
    out["_order"] = out["region"].map(order)
    return out.sort_values(["task", "_order"]).drop(columns="_order").reset_index(drop=True)



def _first_run(run: Any) -> tuple[nn.Module, dict[str, Any]] | None:
    """Model and metadata of the first seed of an
    :class:`~specfusion_lib.properties.runs.TaskRun`."""
    if getattr(run, "summary", None) is None or not run.summary.results:
        return None
    result = run.summary.results[0]
    return result.model, result.metadata


def grad_cam_by_task(runs: Mapping[str, Any], features: FeatureSet,
                     row: int) -> dict[str, GradCAMResult | str]:
    """Grad-CAM of one compound under the model of each task (first seed).

    Args:
        runs: Task → :class:`~specfusion_lib.properties.runs.TaskRun` (e.g. from
            :func:`~specfusion_lib.properties.runs.run_tasks`).
        features: The inputs the runs were trained on.
        row: The compound's row in ``features`` (``-1``: no compound).

    Returns:
        Task → :class:`GradCAMResult`, or the reason there is none (task not available, no
        compound) as a string, for :func:`specfusion_lib.plotting.interpret.plot_gradcam`.
    """
    out: dict[str, GradCAMResult | str] = {}
    for task, run in runs.items():
        found = _first_run(run)
        if found is None:
            out[task] = f"{task}: not available in this snapshot"
        elif row < 0:
            out[task] = "no compound with a usable spectrum"
        else:
            model, meta = found
            out[task] = grad_cam(model, features, [row], metadata=meta)[0]
    return out


def held_out_rows(run: Any, features: FeatureSet) -> np.ndarray:
    """Rows of ``features`` in the test part of a run's first seed (empty if not trained)."""
    if getattr(run, "summary", None) is None or not run.summary.results:
        return np.zeros(0, dtype=np.int64)
    return features.index_of(run.summary.results[0].split["test"])


def held_out_ids(runs: Mapping[str, Any]) -> list[str]:
    """Material ids held out (test part, first seed) by every trained run.

    When the runs' test parts do not overlap (splits of tasks with different labelled
    materials differ), the ids held out by *any* run are returned instead.
    """
    parts = [set(run.summary.results[0].split["test"]) for run in runs.values()
             if getattr(run, "summary", None) is not None and run.summary.results]
    if not parts:
        return []
    common = set.intersection(*parts)
    return sorted(common or set.union(*parts))


def held_out_region_table(runs: Mapping[str, Any], features: FeatureSet,
                      regions: Mapping[str, tuple[float, float]] = REGIONS) -> pd.DataFrame:
    """Region-integrated attention of every test compound of each task (first seed).

    The population counterpart of the single examples: :func:`region_summary` of this table
    shows how the attended region moves between targets.
    """
    frames = []
    for run in runs.values():
        found = _first_run(run)
        rows = held_out_rows(run, features)
        if found is None or rows.size == 0:
            continue
        model, meta = found
        frames.append(region_table(grad_cam(model, features, rows, metadata=meta), regions))
    return (pd.concat(frames, ignore_index=True) if frames
            else region_table([], regions))


def _default_window_check() -> None:
    """The regions must lie inside the model window (checked at import)."""
    lo, hi = WINDOW_EV
    for name, (a, b) in REGIONS.items():
        if a < lo or b > hi:
            raise ConfigurationError(f"region {name!r} ({a}, {b}) leaves the window {WINDOW_EV}")


_default_window_check()
