"""The experiments of notebooks 13 (forward) and 14 (inverse) on an XAStruct table.

Splits (:func:`material_split`): the materials of the table, not its rows, are split 70/15/15,
so the spectra of one material's elements share a part; with ``split_by="family"`` whole
structure families go to one part (:func:`specfusion_lib.training.splits.split_indices`), the
leak-free split of every headline number; ``"random"`` is the paper's protocol, reported once
beside it.

Forward (:func:`forward_study`): per absorbing element with at least ``min_rows`` spectra,
the XAStruct head (:mod:`.forward`) in each requested SGMLP variant, and the two baselines
(:mod:`.baselines`), all trained on the same training rows and scored on the same test rows
with :mod:`.metrics`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from specfusion_lib.training.loop import cpu_threads
from specfusion_lib.training.splits import split_indices
from specfusion_lib.xas_structure.baselines import MeanSpectrum, NearestNeighbourSpectrum
from specfusion_lib.xas_structure.dataset import XAStructData
from specfusion_lib.xas_structure.forward import TrainSettings, XAStructForward, train_head
from specfusion_lib.xas_structure.grid import grid_window
from specfusion_lib.xas_structure.metrics import spectrum_metrics

__all__ = [
    "BASELINES",
    "ForwardStudy",
    "MIN_ROWS",
    "forward_study",
    "material_split",
    "trainable_elements",
]

logger = logging.getLogger(__name__)

#: Least spectra of an element for a per-element model (train part ≈ 70 % of it).
MIN_ROWS = 40
#: Forward baselines by model name.
BASELINES = {"mean spectrum": MeanSpectrum, "nearest neighbour": NearestNeighbourSpectrum}


def material_split(data: XAStructData, *, seed: int = 0, split_by: str = "family",
                   fractions: Sequence[float] = (0.70, 0.15, 0.15)) -> np.ndarray:
    """Part of every row: ``"train"``, ``"val"`` or ``"test"`` (shape ``(n,)``).

    The materials are split (families kept whole for ``split_by="family"``); each row takes
    its material's part.
    """
    ids, first = np.unique(data.material_id, return_index=True)
    groups = data.family[first] if split_by == "family" else None
    parts = split_indices(len(ids), fractions, seed, groups=groups)
    part_of = {}
    for name, idx in zip(("train", "val", "test"), parts, strict=True):
        part_of.update({ids[i]: name for i in idx})
    return np.array([part_of[m] for m in data.material_id])


def trainable_elements(data: XAStructData, parts: np.ndarray, min_rows: int = MIN_ROWS
                       ) -> list[str]:
    """Elements with at least ``min_rows`` rows and ≥ 3 rows in each of val and test."""
    out = []
    for element, n in data.element_counts().items():
        mask = data.element == element
        if n >= min_rows and (parts[mask] == "val").sum() >= 3 and \
                (parts[mask] == "test").sum() >= 3:
            out.append(element)
    return out


@dataclass
class ForwardStudy:
    """Results of :func:`forward_study`.

    Attributes:
        per_spectrum: One row per (model, test spectrum): ``model``, ``split``,
            ``material_id``, ``element``, metric columns.
        predictions: ``(model, element) → (row indices, predicted μ)`` on the test rows.
        forward: The trained XAStruct model (variant ``"sgmlp"``) of the split.
        history: One row per (element, variant, epoch): losses.
        seconds: Training seconds per (element, variant).
        parts: Part of every row.
    """

    per_spectrum: pd.DataFrame
    predictions: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]]
    forward: XAStructForward
    history: pd.DataFrame
    seconds: dict[tuple[str, str], float] = field(default_factory=dict)
    parts: np.ndarray | None = None


def model_name(variant: str) -> str:
    """Display name of an SGMLP variant as a model (``"XAStruct"`` for the full head)."""
    return {"sgmlp": "XAStruct (GatedLinear + SwiGLU)", "relu": "GatedLinear + ReLU",
            "linear": "Linear + SwiGLU", "mlp": "plain MLP"}[variant]


def forward_study(data: XAStructData, *, seed: int = 0, split_by: str = "family",
                  variants: Sequence[str] = ("sgmlp",), elements: Sequence[str] | None = None,
                  settings: TrainSettings | None = None, baselines: bool = True,
                  min_rows: int = MIN_ROWS) -> ForwardStudy:
    """Train and score the forward model, its variants and the baselines.

    Args:
        data: The XAStruct table.
        seed: Split and training seed.
        split_by: ``"family"`` or ``"random"``.
        variants: SGMLP variants to train (``"sgmlp"`` is always trained: it is the model).
        elements: Elements to model (default: :func:`trainable_elements`).
        settings: Head training settings.
        baselines: Also score the baselines.
        min_rows: See :func:`trainable_elements`.
    """
    settings = settings or TrainSettings()
    with cpu_threads(1):  # tiny heads: one thread is fastest and leaves a core free
        return _forward_study(data, seed, split_by, variants, elements, settings, baselines,
                              min_rows)


def _forward_study(data, seed, split_by, variants, elements, settings, baselines, min_rows
                   ) -> ForwardStudy:
    parts = material_split(data, seed=seed, split_by=split_by)
    chosen = list(elements) if elements is not None else trainable_elements(data, parts,
                                                                             min_rows)
    variants = ["sgmlp", *[v for v in variants if v != "sgmlp"]]
    frames, history, heads, predictions, seconds = [], [], {}, {}, {}
    for element in chosen:
        rows = np.flatnonzero(data.element == element)
        tr, va, te = (rows[parts[rows] == p] for p in ("train", "val", "test"))
        energies = grid_window(element).energies
        y_test = data.mu[te]
        models: dict[str, np.ndarray] = {}
        for variant in variants:
            t0 = time.perf_counter()
            head, loop = train_head(data.features, data.mu, tr, va, variant=variant, seed=seed,
                                    settings=settings)
            seconds[(element, variant)] = time.perf_counter() - t0
            name = model_name(variant)
            models[name] = XAStructForward({element: head}).predict_features(
                data.features[te], element)
            history += [{"element": element, "model": name, **h} for h in loop.history]
            if variant == "sgmlp":
                heads[element] = head
        if baselines:
            for name, cls in BASELINES.items():
                models[name] = cls().fit(data.features[tr], data.mu[tr]).predict(
                    data.features[te])
        for name, pred in models.items():
            m = spectrum_metrics(y_test, pred, energies)
            m.insert(0, "element", element)
            m.insert(0, "material_id", data.material_id[te])
            m.insert(0, "split", split_by)
            m.insert(0, "model", name)
            frames.append(m)
            predictions[(name, element)] = (te, pred)
        logger.info("forward %s (%s split): %d train / %d val / %d test", element, split_by,
                    len(tr), len(va), len(te))
    if not frames:
        logger.warning("forward study: no element has %d spectra with validation and test "
                       "rows in this table; nothing trained", min_rows)
        frames = [pd.DataFrame(columns=["model", "split", "material_id", "element", "mae",
                                        "rse", "pearson", "edge_error_ev"])]
    forward = XAStructForward(heads, {"seed": seed, "split_by": split_by,
                                      "snapshot_id": data.meta.get("snapshot_id"),
                                      "train_materials": sorted(set(
                                          data.material_id[parts == "train"]))})
    return ForwardStudy(pd.concat(frames, ignore_index=True), predictions, forward,
                        pd.DataFrame(history), seconds, parts)


# --------------------------------------------------------------------------------------------
# Inverse (notebook 14)
# --------------------------------------------------------------------------------------------

#: Model names of the inverse study, per target.
INVERSE_MODELS = {
    "cn": ("random forest (XAStruct)", "MLP", "majority class"),
    "mnnd": ("XAStruct MNND net", "random forest"),
    "neighbour_type": ("XAStruct SGMLP", "random forest", "majority class"),
}


@dataclass
class InverseStudy:
    """Results of :func:`inverse_study`.

    Attributes:
        predictions: Long table: ``target``, ``model``, ``split``, ``element``,
            ``material_id``, ``true``, ``pred`` (strings for the classifiers, Å for MNND), and
            ``p_pred`` (the probability of the predicted class, classifiers with one).
        models: Fitted models of the XAStruct column, by target (``"cn"``: element →
            forest; ``"mnnd"``: the net; ``"neighbour_type"``: element → (net, classes)).
        parts: Part of every row.
    """

    predictions: pd.DataFrame
    models: dict
    parts: np.ndarray


def _grid_energies(elements: np.ndarray) -> np.ndarray:
    cache = {el: grid_window(el).energies for el in set(elements)}
    return np.stack([cache[el] for el in elements])


def inverse_study(data: XAStructData, *, seed: int = 0, split_by: str = "family",
                  elements: Sequence[str] | None = None, min_rows: int = MIN_ROWS,
                  max_epochs: int = 300, patience: int = 30,
                  parts: np.ndarray | None = None,
                  neighbour_epochs: tuple[int, int] | None = None) -> InverseStudy:
    """Train and score the inverse models and their baselines on one split.

    Args:
        data: The XAStruct table.
        seed: Split and training seed.
        split_by: ``"family"`` or ``"random"``.
        elements: Elements of the per-element models (default :func:`trainable_elements`);
            the MNND model trains on the training rows of these elements.
        min_rows: See :func:`trainable_elements`.
        max_epochs, patience: Of the MNND network (and of the neighbour-type networks
            unless ``neighbour_epochs`` is given).
        neighbour_epochs: ``(max_epochs, patience)`` of the per-element neighbour-type
            networks.
        parts: A precomputed row split (default :func:`material_split`).
    """
    with cpu_threads(1):
        return _inverse_study(data, seed, split_by, elements, min_rows, max_epochs, patience,
                              parts, neighbour_epochs or (max_epochs, patience))


def _inverse_study(data, seed, split_by, elements, min_rows, max_epochs, patience, parts,
                   neighbour_epochs) -> InverseStudy:
    from specfusion_lib.xas_structure import inverse as inv

    parts = material_split(data, seed=seed, split_by=split_by) if parts is None else parts
    chosen = list(elements) if elements is not None else trainable_elements(data, parts,
                                                                             min_rows)
    rows: list[dict] = []
    models: dict = {"cn": {}, "neighbour_type": {}}

    def add(target, model, idx, true, pred, prob=None):
        for j, i in enumerate(idx):
            rows.append({"target": target, "model": model, "split": split_by,
                         "element": data.element[i], "material_id": data.material_id[i],
                         "true": true[j], "pred": pred[j],
                         "p_pred": np.nan if prob is None else float(prob[j])})

    for element in chosen:
        el_rows = np.flatnonzero(data.element == element)
        tr, va, te = (el_rows[parts[el_rows] == p] for p in ("train", "val", "test"))
        x_tr, x_te = data.mu[tr], data.mu[te]
        # CN
        cn_true = data.cn[te].astype(str)
        rf = inv.cn_random_forest(seed).fit(x_tr, data.cn[tr])
        models["cn"][element] = rf
        add("cn", INVERSE_MODELS["cn"][0], te, cn_true, rf.predict(x_te).astype(str),
            rf.predict_proba(x_te).max(axis=1))
        if len(set(data.cn[tr])) > 1:
            mlp = inv.cn_mlp(seed).fit(x_tr, data.cn[tr])
            add("cn", "MLP", te, cn_true, mlp.predict(x_te).astype(str))
        else:
            add("cn", "MLP", te, cn_true, np.full(len(te), str(data.cn[tr][0])))
        add("cn", "majority class", te, cn_true,
            inv.MajorityClass().fit(x_tr, data.cn[tr]).predict(x_te).astype(str))
        # neighbour type
        nb_true = data.neighbour_type[te]
        net, classes = inv.fit_neighbour_net(data.mu, data.neighbour_type, tr, va, seed=seed,
                                             max_epochs=neighbour_epochs[0],
                                             patience=neighbour_epochs[1])
        models["neighbour_type"][element] = (net, classes)
        prob = inv.neighbour_probabilities(net, x_te)
        add("neighbour_type", INVERSE_MODELS["neighbour_type"][0], te, nb_true,
            np.asarray(classes)[prob.argmax(axis=1)], prob.max(axis=1))
        nrf = inv.neighbour_random_forest(seed).fit(x_tr, data.neighbour_type[tr])
        add("neighbour_type", "random forest", te, nb_true, nrf.predict(x_te))
        add("neighbour_type", "majority class", te, nb_true,
            inv.MajorityClass().fit(x_tr, data.neighbour_type[tr]).predict(x_te))
    if not chosen:
        logger.warning("inverse study: no element has %d spectra with validation and test "
                       "rows in this table; nothing trained", min_rows)
        columns = ["target", "model", "split", "element", "material_id", "true", "pred",
                   "p_pred"]
        return InverseStudy(pd.DataFrame(rows, columns=columns), models, parts)
    # MNND: one model over the chosen elements
    keep = np.isin(data.element, chosen)
    tr, va, te = (np.flatnonzero(keep & (parts == p)) for p in ("train", "val", "test"))
    energies = _grid_energies(data.element)
    net, _ = inv.fit_mnnd_net(energies, data.mu, data.mnnd, tr, va, seed=seed,
                              max_epochs=max_epochs, patience=patience)
    models["mnnd"] = net
    add("mnnd", INVERSE_MODELS["mnnd"][0], te, data.mnnd[te],
        inv.predict_mnnd(net, energies[te], data.mu[te]))
    edge = energies[:, :1] - grid_window("Sc").energies[0]  # element identity for the forest
    x_rf = np.hstack([data.mu, edge / 1e3])
    mrf = inv.mnnd_random_forest(seed).fit(x_rf[tr], data.mnnd[tr])
    add("mnnd", "random forest", te, data.mnnd[te], mrf.predict(x_rf[te]))
    return InverseStudy(pd.DataFrame(rows), models, parts)


def inverse_summary(predictions: pd.DataFrame) -> pd.DataFrame:
    """Per (target, model, split, element) and pooled (``element == "all"``) scores.

    Classifiers: ``n``, ``accuracy``, ``macro_f1``; MNND: ``n``, ``mae`` (Å), ``slope`` of the
    least-squares line of predicted on true MNND, ``r2``.
    """
    from sklearn.metrics import f1_score, r2_score

    out = []
    if predictions.empty:
        return pd.DataFrame(columns=["target", "model", "split", "element", "n", "accuracy",
                                     "macro_f1", "mae", "slope", "r2"])
    for (target, model, split), part in predictions.groupby(["target", "model", "split"],
                                                            sort=False):
        groups = [*part.groupby("element", sort=True), ("all", part)]
        for element, sub in groups:
            row = {"target": target, "model": model, "split": split, "element": element,
                   "n": len(sub)}
            if target == "mnnd":
                t = sub["true"].astype(float).to_numpy()
                p = sub["pred"].astype(float).to_numpy()
                row["mae"] = float(np.abs(t - p).mean())
                row["slope"] = float(np.polyfit(t, p, 1)[0]) if len(sub) > 2 and t.std() > 0 \
                    else np.nan
                row["r2"] = float(r2_score(t, p)) if len(sub) > 1 else np.nan
            else:
                t = sub["true"].astype(str).to_numpy()
                p = sub["pred"].astype(str).to_numpy()
                row["accuracy"] = float((t == p).mean())
                row["macro_f1"] = float(f1_score(t, p, average="macro", zero_division=0))
            out.append(row)
    return pd.DataFrame(out)


# --------------------------------------------------------------------------------------------
# Helpers of the notebooks
# --------------------------------------------------------------------------------------------


def profile_table(snapshot, max_materials: int | None) -> XAStructData:
    """The snapshot's XAStruct table (cached or built), capped to ``max_materials`` materials
    with the package's one subset rule (:func:`~specfusion_lib.training.splits.capped_rows`)."""
    from specfusion_lib.training.splits import capped_rows
    from specfusion_lib.xas_structure.dataset import build_dataset

    data = build_dataset(snapshot)
    if max_materials is None:
        return data
    ids = np.unique(data.material_id)
    keep = set(ids[capped_rows(list(ids), max_materials)])
    return data.subset(np.array([m in keep for m in data.material_id]))


def example_rows(per_spectrum: pd.DataFrame, rows: dict[str, np.ndarray], *, model: str
                 ) -> pd.DataFrame:
    """Best, median and worst test spectrum of ``model`` per element, by MAE.

    Args:
        per_spectrum: :class:`ForwardStudy` ``per_spectrum``.
        rows: Element → test row indices in the order of ``per_spectrum``'s rows of
            ``model`` and that element.
        model: Model name.
    """
    out = []
    for element, idx in rows.items():
        sub = per_spectrum[(per_spectrum["model"] == model) & (per_spectrum["element"] == element)]
        if sub.empty:
            continue
        order = np.argsort(sub["mae"].to_numpy(), kind="stable")
        for rank, k in (("best", order[0]), ("median", order[len(order) // 2]),
                        ("worst", order[-1])):
            out.append({"element": element, "rank": rank, "row": int(idx[k]),
                        "material_id": sub["material_id"].iloc[k],
                        "mae": float(sub["mae"].iloc[k])})
    return pd.DataFrame(out, columns=["element", "rank", "row", "material_id", "mae"])


def score_forward_on(study: ForwardStudy, train_data: XAStructData, target: XAStructData,
                     *, split: str) -> pd.DataFrame:
    """Score a study's trained XAStruct heads and freshly fitted baselines (training rows of
    ``train_data``) on every row of another table (e.g. the real-structure check).

    Returns:
        Per-spectrum metric rows with ``model``, ``split`` (= ``split``), ``material_id``,
        ``element``.
    """
    frames = []
    train_rows = study.parts == "train"
    for element in study.forward.elements:
        te = np.flatnonzero(target.element == element)
        if len(te) == 0:
            continue
        tr = np.flatnonzero(train_rows & (train_data.element == element))
        preds = {model_name("sgmlp"): study.forward.predict_features(target.features[te],
                                                                       element)}
        for name, cls in BASELINES.items():
            preds[name] = cls().fit(train_data.features[tr], train_data.mu[tr]).predict(
                target.features[te])
        for name, pred in preds.items():
            m = spectrum_metrics(target.mu[te], pred, grid_window(element).energies)
            m.insert(0, "element", element)
            m.insert(0, "material_id", target.material_id[te])
            m.insert(0, "split", split)
            m.insert(0, "model", name)
            frames.append(m)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def real_check_table(*, build_dir: str = "data/real_build",
                     out: str = "build/real_check_snapshot") -> XAStructData | None:
    """The XAStruct table of the real-structure check (``mp_structures_check``, never trained
    on) from the FEFF10 spectra in the real build's cache; ``None`` when there are none yet.

    The snapshot is assembled from the cache (no FEFF run) into ``out``; its spectra carry
    the build's preset (``fast-scf``), while the demo's are ``fast``: part of any gap between
    the demo test split and the check is that preset difference, which the mean-spectrum
    baseline (also trained on ``fast``) shares.
    """
    from specfusion_lib.core.errors import SnapshotError
    from specfusion_lib.data.real_spectra import build_real_snapshot
    from specfusion_lib.data.snapshot import load_snapshot
    from specfusion_lib.xas_structure.dataset import DEFAULT_CACHE_DIR, build_dataset

    try:
        path = build_real_snapshot("check", out, build_dir=build_dir, progress=False)
    except SnapshotError as exc:
        logger.warning("no real-structure check spectra: %s", exc)
        return None
    return build_dataset(load_snapshot(path), cache_dir=DEFAULT_CACHE_DIR, progress=False)


@dataclass(frozen=True)
class StudySettings:
    """What a profile sets for notebooks 13 and 14.

    Attributes:
        max_materials: Materials cap of the XAStruct table (the table is cached; the smoke
            profile caps it only to keep training short).
        min_rows: Least spectra of an element for its per-element models. The quick profile
            models the nine elements with at least 100 spectra in the demo (Ti, V, Cr, Mn, Fe,
            Co, Ni, Cu, Ag) to stay within its time budget; ``paper`` every element
            with at least :data:`MIN_ROWS`.
        head: Training settings of the forward heads.
        inverse_epochs: ``(max_epochs, patience)`` of the MNND network.
        neighbour_epochs: ``(max_epochs, patience)`` of the neighbour-type networks.
    """

    max_materials: int | None
    min_rows: int
    head: TrainSettings
    inverse_epochs: tuple[int, int]
    neighbour_epochs: tuple[int, int]


#: Profile name → :class:`StudySettings`.
PROFILE_SETTINGS: dict[str, StudySettings] = {
    "smoke": StudySettings(400, MIN_ROWS, TrainSettings(max_epochs=3, patience=2), (3, 2),
                           (3, 2)),
    "quick": StudySettings(None, 100, TrainSettings(), (300, 30), (150, 15)),
    "paper": StudySettings(None, MIN_ROWS, TrainSettings(max_epochs=1000, patience=60),
                           (500, 40), (500, 40)),
}


def forward_headline(summary: pd.DataFrame) -> pd.DataFrame:
    """Pooled rows of a forward summary with the papers' reference values beside them.

    Args:
        summary: :func:`~.metrics.summarise` output by ``("model", "split")``.

    Returns:
        One row per (model, split): ``n``, ``mae``, ``rse``, ``pearson_median``,
        ``share_pearson_above_0.9``, ``edge_error_ev``, ``elements_beating_nn`` (for the
        XAStruct model: elements where its MAE is below the nearest-neighbour baseline's, of
        the elements scored), ``paper_mae`` and ``paper_source`` (XAStruct Tables 1 and 3) and
        ``paper_rse`` (CGXAS universal model).
    """
    from specfusion_lib.core.paper import CGXAS_UNIVERSAL_RSE, XASTRUCT_FORWARD_MAE

    ref = {model_name(v): pv for v, pv in XASTRUCT_FORWARD_MAE.items()}
    pooled = summary[summary["element"] == "all"].copy()
    per_el = summary[summary["element"] != "all"]
    beats = []
    for row in pooled.itertuples(index=False):
        nn_rows = per_el[(per_el["split"] == row.split) & (per_el["model"] == "nearest neighbour")]
        mine = per_el[(per_el["split"] == row.split) & (per_el["model"] == row.model)]
        merged = mine.merge(nn_rows, on="element", suffixes=("", "_nn"))
        beats.append(f"{int((merged['mae'] < merged['mae_nn']).sum())}/{len(merged)}"
                     if row.model != "nearest neighbour" else "")
    pooled["elements_beating_nn"] = beats
    pooled["paper_mae"] = [ref[m].text if m in ref else "" for m in pooled["model"]]
    pooled["paper_source"] = [ref[m].source if m in ref else "" for m in pooled["model"]]
    pooled["paper_rse"] = [CGXAS_UNIVERSAL_RSE.text if m == model_name("sgmlp") else ""
                           for m in pooled["model"]]
    keep = ["model", "split", "n", "mae", "rse", "pearson_median", "share_pearson_above_0.9",
            "edge_error_ev", "elements_beating_nn", "paper_mae", "paper_source", "paper_rse"]
    return pooled[keep].reset_index(drop=True)


def score_inverse_on(study: InverseStudy, target: XAStructData, *, split: str) -> pd.DataFrame:
    """Predictions of a study's XAStruct inverse models (CN forest, neighbour-type SGMLP,
    MNND net) on every row of another table, in :class:`InverseStudy` ``predictions`` form."""
    from specfusion_lib.xas_structure import inverse as inv

    rows = []
    for element, forest in study.models["cn"].items():
        te = np.flatnonzero(target.element == element)
        if len(te) == 0:
            continue
        x = target.mu[te]
        cn = forest.predict(x).astype(str)
        net, classes = study.models["neighbour_type"][element]
        prob = inv.neighbour_probabilities(net, x)
        nb = np.asarray(classes)[prob.argmax(axis=1)]
        mnnd = inv.predict_mnnd(study.models["mnnd"], _grid_energies(target.element[te]), x)
        for j, i in enumerate(te):
            base = {"split": split, "element": element, "material_id": target.material_id[i]}
            rows += [
                {**base, "target": "cn", "model": INVERSE_MODELS["cn"][0],
                 "true": str(target.cn[i]), "pred": cn[j], "p_pred": np.nan},
                {**base, "target": "neighbour_type", "model": INVERSE_MODELS["neighbour_type"][0],
                 "true": target.neighbour_type[i], "pred": nb[j], "p_pred": float(prob[j].max())},
                {**base, "target": "mnnd", "model": INVERSE_MODELS["mnnd"][0],
                 "true": float(target.mnnd[i]), "pred": float(mnnd[j]), "p_pred": np.nan}]
    return pd.DataFrame(rows)


def inverse_headline(summary: pd.DataFrame) -> pd.DataFrame:
    """Pooled rows of :func:`inverse_summary` with XAStruct's Table 2 values beside them."""
    from specfusion_lib.core.paper import XASTRUCT_INVERSE

    paper_model = {INVERSE_MODELS["cn"][0]: "XAStruct", "MLP": "MLP",
                   INVERSE_MODELS["mnnd"][0]: "XAStruct",
                   INVERSE_MODELS["neighbour_type"][0]: "XAStruct",
                   "random forest": "random forest"}
    pooled = summary[summary["element"] == "all"].copy()
    texts = []
    for row in pooled.itertuples(index=False):
        metric = "mae" if row.target == "mnnd" else "accuracy"
        ref = XASTRUCT_INVERSE.get((row.target, paper_model.get(row.model, ""), metric))
        texts.append(ref.text if ref else "")
    pooled["paper_value"] = texts
    return pooled.reset_index(drop=True)
