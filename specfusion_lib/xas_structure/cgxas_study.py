"""Notebook 15's experiments: the universal CGXAS model against per-element models (CGXAS
Fig. 2, 3a), its latent space (Fig. 3b,c) and where measured samples sit (Fig. 4).

Every comparison uses the XAStruct table's rows (site-averaged spectra on the absolute grid,
:mod:`.dataset`) and its materials split (:func:`~.study.material_split`, families kept whole
for ``split_by="family"``): the universal model is trained on the *site* spectra of the
training materials (every absorbing element that fits its grid) and scored by mask pooling
over every site of the element, so its test rows are exactly XAStruct's.

Models compared, per element (CGXAS Fig. 3a):

* ``CGXAS universal``: one network for all elements (:mod:`.cgxas`).
* ``CGXAS fine-tuned per element``: the universal model with its decoder trained further on
  one element's training spectra (CGXAS_FT_X: "only the parameters in the MLP are
  optimized"), early-stopped on that element's validation spectra.
* ``XAStruct (GatedLinear + SwiGLU)``: the per-element heads of the XAStruct study.
* the baselines (element mean spectrum, nearest neighbour in CHGNet-feature space).

:func:`load_or_train_universal` reuses a checkpoint whose metadata match the snapshot, its
site-spectra supplement, the split and the settings (the quick profile ships one, SPEC §7b),
and trains otherwise.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from specfusion_lib.core.errors import InputFileError
from specfusion_lib.training.loop import EpochLoop, cpu_threads
from specfusion_lib.xas_structure.calibration import CalibrationSettings
from specfusion_lib.xas_structure.cgxas import (
    CGXASNet,
    CGXASSettings,
    SiteTargets,
    _Batcher,
    average_targets,
    build_graphs,
    pool_sites,
    predict_targets,
    rse_loss,
    site_targets,
    train_cgxas,
)
from specfusion_lib.xas_structure.crystal_graph import CrystalGraph, batch_graphs
from specfusion_lib.xas_structure.dataset import XAStructData
from specfusion_lib.xas_structure.fitting import fit_network
from specfusion_lib.xas_structure.grid import grid_window
from specfusion_lib.xas_structure.metrics import spectrum_metrics
from specfusion_lib.xas_structure.study import material_split

__all__ = [
    "CGXAS_PROFILES",
    "FINE_TUNED",
    "SHIPPED_CHECKPOINT",
    "UNIVERSAL",
    "CGXASProfile",
    "UniversalStudy",
    "fine_tune_element",
    "latent_sites",
    "load_or_train_universal",
    "measured_map",
    "tsne_embedding",
    "universal_headline",
    "universal_study",
]

logger = logging.getLogger(__name__)

#: Model names of the comparison.
UNIVERSAL = "CGXAS universal"
FINE_TUNED = "CGXAS fine-tuned per element"
#: The universal model the quick profile loads (trained on the demo's family-split training
#: part, seed 0, quick settings; metadata beside it).
SHIPPED_CHECKPOINT = Path("data/models/cgxas-universal-family-seed0.pt")


@dataclass(frozen=True)
class CGXASProfile:
    """What a profile sets for notebook 15.

    Attributes:
        max_materials: Materials cap of the XAStruct table (smoke only).
        min_rows: Least spectra of an element for the per-element comparison.
        universal: Universal-model settings.
        fine_tune_epochs: Most epochs of each per-element fine-tuning.
        calibration: Calibration settings.
        tsne_sites: Latent site vectors shown in the t-SNE map.
    """

    max_materials: int | None
    min_rows: int
    universal: CGXASSettings
    fine_tune_epochs: int
    calibration: CalibrationSettings
    tsne_sites: int


#: Profile name → :class:`CGXASProfile`.
CGXAS_PROFILES: dict[str, CGXASProfile] = {
    "smoke": CGXASProfile(400, 40, CGXASSettings(hidden=32, n_conv=2, decoder_depth=2,
                                                 max_epochs=3, patience=2), 3,
                          CalibrationSettings(epochs=5, epochs_everything=3,
                                              epochs_per_layer=2, inner_folds=2), 300),
    "quick": CGXASProfile(None, 100, CGXASSettings(max_epochs=150, patience=15), 200,
                          CalibrationSettings(inner_folds=2), 2000),
    "paper": CGXASProfile(None, 40, CGXASSettings(max_epochs=300, patience=30), 300,
                          CalibrationSettings(inner_folds=4), 4000),
}


@dataclass
class UniversalStudy:
    """Results of :func:`universal_study`.

    Attributes:
        model: The universal network.
        per_spectrum: One row per (model, test spectrum): ``model``, ``split``,
            ``material_id``, ``element``, metrics (the CGXAS models; XAStruct rows are added
            by the notebook from its own study).
        predictions: ``(model, element) → (row indices of the XAStruct table, μ)``.
        history: Loss per epoch of the universal model (``train_loss``, ``val_loss``: RSE);
            empty when the model came from a checkpoint (then ``metadata["history"]``).
        metadata: The checkpoint metadata (snapshot, split, settings, seconds).
        graphs: Crystal graph of every material used.
        targets: Training targets (site spectra) with their parts.
        target_parts: Part of every target row.
        parts: Part of every XAStruct-table row.
        seconds: Wall seconds per step.
    """

    model: CGXASNet
    per_spectrum: pd.DataFrame
    predictions: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]
    history: pd.DataFrame
    metadata: dict
    graphs: dict[str, CrystalGraph]
    targets: SiteTargets
    target_parts: np.ndarray
    parts: np.ndarray
    seconds: dict[str, float] = field(default_factory=dict)


def _expected_metadata(snapshot, split_by: str, seed: int, settings: CGXASSettings,
                       max_materials: int | None) -> dict:
    return {"snapshot_id": snapshot.snapshot_id,
            "site_spectra_sha256": snapshot.site_spectra_sha256,
            "split_by": split_by, "seed": seed, "settings": asdict(settings),
            "max_materials": max_materials}


def load_or_train_universal(snapshot, graphs: dict[str, CrystalGraph], targets: SiteTargets,
                            target_parts: np.ndarray, *, split_by: str, seed: int,
                            settings: CGXASSettings, checkpoints: Sequence[str | Path] = (),
                            save_to: str | Path | None = None,
                            max_materials: int | None = None
                            ) -> tuple[CGXASNet, EpochLoop | None, dict]:
    """The universal model from the first of ``checkpoints`` whose metadata match the
    snapshot, its site spectra, the split and the settings; otherwise trained (and written to
    ``save_to`` when given). A shipped checkpoint is never overwritten unless it is
    ``save_to``.

    Returns:
        ``(model, loop or None when loaded, metadata)``.
    """
    from specfusion_lib.training.checkpoints import load, save_checkpoint

    expected = _expected_metadata(snapshot, split_by, seed, settings, max_materials)
    for checkpoint in [*checkpoints, *([save_to] if save_to is not None else [])]:
        if not Path(checkpoint).is_file():
            continue
        try:
            model, meta = load(checkpoint)
        except InputFileError as exc:
            logger.warning("%s unusable (%s)", checkpoint, exc)
            continue
        stale = {k for k, v in expected.items() if meta.get(k) != v}
        if not stale and isinstance(model, CGXASNet):
            logger.info("CGXAS universal model loaded from %s", checkpoint)
            return model, None, meta
        logger.info("%s was trained on other data or settings (%s)", checkpoint,
                    ", ".join(sorted(stale)))
    t0 = time.perf_counter()
    model, loop = train_cgxas(graphs, targets.subset(target_parts == "train"),
                              targets.subset(target_parts == "val"), settings=settings,
                              seed=seed)
    meta = {**expected, "elements": targets.elements(), "train_seconds": loop.train_seconds,
            "wall_seconds": time.perf_counter() - t0, "best_epoch": loop.best_epoch,
            "history": loop.history, "targets": targets.kind,
            "train_materials": int(len(set(targets.material_id[target_parts == "train"])))}
    if save_to is not None:
        save_checkpoint(save_to, model, meta)
    return model, loop, meta


def _pooled_vectors(model: CGXASNet, graphs: dict[str, CrystalGraph], targets: SiteTargets
                    ) -> tuple[Tensor, Tensor, Tensor]:
    """Site vectors of every pooled site, their target rows, and the targets' μ (rows in
    the order of ``targets``)."""
    batcher = _Batcher(graphs, targets)
    vecs, pools, order = [], [], []
    offset = 0
    with torch.no_grad():
        for start in range(0, len(batcher.materials), 64):
            mats = list(range(start, min(start + 64, len(batcher.materials))))
            batch, site_index, pool_row, rows = batcher.batch(mats)
            vecs.append(model.site_vectors(batch)[site_index])
            pools.append(pool_row + offset)
            order.append(rows)
            offset += len(rows)
    rows = torch.cat(order)
    return torch.cat(vecs), torch.cat(pools), rows


def fine_tune_element(model: CGXASNet, graphs: dict[str, CrystalGraph], train: SiteTargets,
                      val: SiteTargets, *, seed: int = 0, max_epochs: int = 200,
                      patience: int = 20, lr: float = 1e-4) -> CGXASNet:
    """CGXAS_FT_X: a copy of ``model`` whose decoder is trained on one element's targets
    (encoder frozen), early-stopped on ``val`` (RSE)."""
    tuned = copy.deepcopy(model)
    for p in tuned.parameters():
        p.requires_grad_(False)
    for p in tuned.decoder.parameters():
        p.requires_grad_(True)
    tv, tp, trows = _pooled_vectors(tuned, graphs, train)
    vv, vp, vrows = _pooled_vectors(tuned, graphs, val)
    t_mu, v_mu = torch.from_numpy(train.mu)[trows], torch.from_numpy(val.mu)[vrows]
    t_sites = [np.flatnonzero(tp.numpy() == r) for r in range(len(trows))]

    def loss_of(rows: Tensor) -> Tensor:
        if not tuned.training:
            return rse_loss(pool_sites(tuned.decode(vv), vp, len(vrows)), v_mu)
        chosen = rows.tolist()
        idx = np.concatenate([t_sites[r] for r in chosen])
        pool = torch.from_numpy(np.concatenate([np.full(len(t_sites[r]), k)
                                                for k, r in enumerate(chosen)]))
        return rse_loss(pool_sites(tuned.decode(tv[idx]), pool, len(chosen)), t_mu[rows])

    fit_network(tuned, loss_of, np.arange(len(trows)), np.arange(len(vrows)), seed=seed,
                max_epochs=max_epochs, patience=patience, lr=lr, batch_size=32,
                desc="CGXAS fine-tune")
    return tuned.eval()


def _metric_rows(model_name: str, split_by: str, data: XAStructData, rows: np.ndarray,
                 pred: np.ndarray, element: str) -> pd.DataFrame:
    m = spectrum_metrics(data.mu[rows], pred, grid_window(element).energies)
    m.insert(0, "element", element)
    m.insert(0, "material_id", data.material_id[rows])
    m.insert(0, "split", split_by)
    m.insert(0, "model", model_name)
    return m


def universal_study(snapshot, data: XAStructData, *, seed: int = 0, split_by: str = "family",
                    settings: CGXASSettings | None = None,
                    checkpoints: Sequence[str | Path] = (), save_to: str | Path | None = None,
                    fine_tune_elements: Sequence[str] = (), fine_tune_epochs: int = 200,
                    max_materials: int | None = None) -> UniversalStudy:
    """Train (or load) the universal model on the split's training materials and score it,
    and its per-element fine-tuned versions, on the test rows of the XAStruct table.

    Args:
        snapshot: The snapshot of ``data``.
        data: Its XAStruct table (defines the split and the test rows).
        seed: Split and training seed.
        split_by: ``"family"`` or ``"random"``.
        settings: Universal-model settings.
        checkpoints: Checkpoints to reuse when they match (:func:`load_or_train_universal`).
        save_to: Where a newly trained model is written.
        fine_tune_elements: Elements to fine-tune the decoder for.
        fine_tune_epochs: Most epochs of each fine-tuning.
        max_materials: Recorded in the metadata (the table's cap).
    """
    settings = settings or CGXASSettings()
    seconds: dict[str, float] = {}
    t0 = time.perf_counter()
    parts = material_split(data, seed=seed, split_by=split_by)
    part_of = dict(zip(data.material_id, parts, strict=True))
    targets = site_targets(snapshot)
    keep = np.array([m in part_of for m in targets.material_id])
    targets = targets.subset(keep)
    target_parts = np.array([part_of[m] for m in targets.material_id])
    graphs = build_graphs(snapshot, targets.material_id)
    seconds["data"] = time.perf_counter() - t0
    with cpu_threads(2):
        model, loop, meta = load_or_train_universal(
            snapshot, graphs, targets, target_parts, split_by=split_by, seed=seed,
            settings=settings, checkpoints=checkpoints, save_to=save_to,
            max_materials=max_materials)
    seconds["universal"] = meta.get("wall_seconds", float("nan"))
    history = pd.DataFrame(loop.history if loop is not None else meta.get("history", []))
    test = np.flatnonzero(parts == "test")
    test_targets = average_targets(snapshot, data.material_id[test], data.element[test],
                                   data.mu[test])
    graphs.update(build_graphs(snapshot, [m for m in test_targets.material_id
                                          if m not in graphs]))
    pred = predict_targets(model, graphs, test_targets)
    frames, predictions = [], {}
    trained_on = set(meta.get("elements", targets.elements()))
    for element in sorted(set(data.element[test].tolist()) & trained_on):
        local = np.flatnonzero(data.element[test] == element)
        rows = test[local]
        predictions[(UNIVERSAL, element)] = (rows, pred[local])
        frames.append(_metric_rows(UNIVERSAL, split_by, data, rows, pred[local], element))
    t1 = time.perf_counter()
    for element in fine_tune_elements:
        tr = (target_parts == "train") & (targets.element == element)
        va = (target_parts == "val") & (targets.element == element)
        rows = test[data.element[test] == element]
        if tr.sum() < 2 or va.sum() < 1 or not len(rows):
            logger.info("fine-tuning %s: too few spectra, skipped", element)
            continue
        tuned = fine_tune_element(model, graphs, targets.subset(tr), targets.subset(va),
                                  seed=seed, max_epochs=fine_tune_epochs)
        local = np.flatnonzero(data.element[test] == element)
        ft_pred = predict_targets(tuned, graphs, test_targets.subset(local))
        predictions[(FINE_TUNED, element)] = (rows, ft_pred)
        frames.append(_metric_rows(FINE_TUNED, split_by, data, rows, ft_pred, element))
    seconds["fine_tune"] = time.perf_counter() - t1
    per_spectrum = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["model", "split", "material_id", "element", "mae", "rse", "pearson",
                 "edge_error_ev"])
    return UniversalStudy(model, per_spectrum, predictions, history, meta, graphs, targets,
                          target_parts, parts, seconds)


def latent_sites(model: CGXASNet, graphs: dict[str, CrystalGraph], material_ids: Sequence[str],
                 *, max_sites: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Latent site vectors of the materials' atoms with their element and nearest neighbour's
    element (for CGXAS Fig. 3b,c).

    Returns:
        Columns ``material_id``, ``site``, ``element``, ``neighbour`` and ``v0`` … (one per
        latent channel); at most ``max_sites`` rows (a seeded sample).
    """
    from pymatgen.core import Element

    rows, vectors = [], []
    with torch.no_grad():
        for mid in material_ids:
            g = graphs[mid]
            v = model.site_vectors(batch_graphs([g])).numpy()
            for site in range(g.n_atoms):
                edges = np.flatnonzero(g.src == site)
                nearest = g.dst[edges[np.argmin(g.distance[edges])]]
                rows.append({"material_id": mid, "site": site,
                             "element": Element.from_Z(int(g.numbers[site])).symbol,
                             "neighbour": Element.from_Z(int(g.numbers[nearest])).symbol})
                vectors.append(v[site])
    frame = pd.DataFrame(rows)
    latent = pd.DataFrame(np.array(vectors), columns=[f"v{i}" for i in range(len(vectors[0]))]
                          ) if vectors else pd.DataFrame()
    out = pd.concat([frame, latent], axis=1)
    if len(out) > max_sites:
        out = out.sample(max_sites, random_state=seed).sort_index()
    return out.reset_index(drop=True)


def tsne_embedding(matrix: np.ndarray, *, seed: int = 0) -> np.ndarray:
    """2-D t-SNE (scikit-learn, perplexity ≤ 30) of the rows of ``matrix``, shape ``(n, 2)``."""
    from sklearn.manifold import TSNE

    n = len(matrix)
    if n < 5:
        return np.zeros((n, 2))
    return TSNE(n_components=2, perplexity=min(30.0, (n - 1) / 3), random_state=seed,
                init="pca").fit_transform(np.asarray(matrix, float))


def universal_headline(per_spectrum: pd.DataFrame, elements: Sequence[str]) -> pd.DataFrame:
    """Pooled metrics per model over the test spectra of ``elements`` (the elements every
    model covers), plus the universal model over every element it predicts; CGXAS's RSE
    beside them.

    Returns:
        Columns ``model``, ``split``, ``elements``, ``n``, ``mae``, ``rse``,
        ``pearson_median``, ``share_pearson_above_0.9``, ``edge_error_ev``,
        ``beats_per_element_model`` (elements where the model's MAE is below XAStruct's),
        ``paper_rse``.
    """
    from specfusion_lib.core.paper import CGXAS_UNIVERSAL_RSE
    from specfusion_lib.xas_structure.metrics import summarise
    from specfusion_lib.xas_structure.study import model_name

    common = per_spectrum[per_spectrum["element"].isin(list(elements))]
    by_element = summarise(common, by=("model", "split"))
    reference = by_element[by_element["model"] == model_name("sgmlp")].set_index(
        ["split", "element"])["mae"]
    rows = []
    for (model, split), part in common.groupby(["model", "split"], sort=False):
        pooled = summarise(part)
        pooled = pooled[pooled["element"] == "all"].iloc[0]
        mine = by_element[(by_element["model"] == model) & (by_element["split"] == split)
                          & (by_element["element"] != "all")]
        beats = sum(row.mae < reference.get((split, row.element), np.nan)
                    for row in mine.itertuples())
        rows.append({"model": model, "split": split, "elements": "compared",
                     **{k: pooled[k] for k in ("n", "mae", "rse", "pearson_median",
                                               "share_pearson_above_0.9", "edge_error_ev")},
                     "beats_per_element_model": f"{beats}/{len(mine)}",
                     "paper_rse": CGXAS_UNIVERSAL_RSE.text if model == UNIVERSAL else ""})
    mine = per_spectrum[per_spectrum["model"] == UNIVERSAL]
    if len(mine):
        pooled = summarise(mine)
        pooled = pooled[pooled["element"] == "all"].iloc[0]
        rows.append({"model": UNIVERSAL, "split": str(mine["split"].iloc[0]),
                     "elements": f"all {mine['element'].nunique()}",
                     **{k: pooled[k] for k in ("n", "mae", "rse", "pearson_median",
                                               "share_pearson_above_0.9", "edge_error_ev")},
                     "beats_per_element_model": "", "paper_rse": CGXAS_UNIVERSAL_RSE.text})
    return pd.DataFrame(rows)


def measured_map(study: UniversalStudy, snapshot, data: XAStructData, measured, element: str,
                 *, seed: int = 0) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """t-SNE of the universal model's spectra of ``element`` for the XAStruct table's rows and
    for the measured compounds' structures (CGXAS Fig. 4).

    Returns:
        ``(snapshot_xy (n, 2), measured_xy (k, 2), measured formulas)``.
    """
    from specfusion_lib.xas_structure.calibration import Calibrated

    rows = np.flatnonzero(data.element == element)
    mine = np.flatnonzero(measured.element == element)
    if not len(rows) or not len(mine):
        return np.zeros((0, 2)), np.zeros((0, 2)), []
    targets = average_targets(snapshot, data.material_id[rows], data.element[rows],
                              data.mu[rows])
    graphs = dict(study.graphs)
    graphs.update(build_graphs(snapshot, [m for m in targets.material_id if m not in graphs]))
    simulated = predict_targets(study.model, graphs, targets)
    subset = measured.subset(mine)
    predicted = Calibrated(study.model, None, "before").predict(subset)
    xy = tsne_embedding(np.vstack([simulated, predicted]), seed=seed)
    return xy[:len(rows)], xy[len(rows):], [str(f) for f in subset.formula]
