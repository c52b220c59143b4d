"""Training throughput, per-task vs multi-task, and prediction latency (SPEC §9).

Three measurements on the current machine (CPU threads from ``--threads``, default 2):

1. **Training samples per second per task**: :func:`specfusion_lib.properties.train.train_model` on
a
   synthetic set of compounds (``--materials``, default 512; 2–4 elements, 1–2 TMs each)
   whose labels depend on the spectra and the composition, so the models have something to
   learn. Four tasks: two classification, two regression; default model size.
2. **Per-task vs multi-task**: the four single-task models (one after another,
   :func:`~specfusion_lib.properties.train.train_model`) against one
   :class:`~specfusion_lib.models.specfusionnet.MultiTaskSpecFusionNet` with a head per task
   (:func:`specfusion_lib.properties.multitask.train_multitask`: summed cross-entropy + L1 on
   standardised targets), same split, same profile (patience = epochs, so no early stop;
   both restore the best validation epoch): total training time and the test metric of
   each task.
3. **Prediction latency** of one compound after loading: smoke-profile models of density,
   crystal system, oxidation state and coordination number are trained on the fixture
   snapshot (``tests/fixtures/snapshot``) into a temporary folder, loaded once
   (:class:`specfusion_lib.properties.predict.Predictor`), and a compound with two TM spectra (Mn
   from MnO, Ni from NiO, elements Mn Ni O; elements the smoke models saw, since the predictor
   refuses unseen ones) is predicted from the raw spectra (preprocessing included). Target:
   under 200 ms on 2 cores.

Run::

    .venv/bin/python benchmarks/train.py [--materials 512] [--epochs 5] [--threads 2]

Numbers are printed as a table (and as JSON with ``--json``); nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from specfusion_lib.core.elements import TRANSITION_METALS, descriptor_columns, descriptor_matrix
from specfusion_lib.core.profiles import Profile
from specfusion_lib.properties.features import FeatureSet, TaskData, get_task_spec
from specfusion_lib.properties.multitask import MultiTaskData, train_multitask
from specfusion_lib.properties.train import train_model
from specfusion_lib.training.splits import split_indices

ROOT = Path(__file__).resolve().parents[1]
_TMS = ("Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn")
_OTHERS = ("O", "S", "N", "F", "Li", "Sr", "Al")
_N_POINTS = 200


def synthetic_set(n: int, seed: int = 0) -> tuple[FeatureSet, dict[str, TaskData]]:
    """Synthetic compounds with learnable labels for four tasks.

    Each TM spectrum is an edge (logistic) plus a white line whose position encodes a hidden
    "valence" (0, 1 or 2) and whose height encodes a hidden coordination; labels are
    functions of these hidden values and of the composition, plus noise.
    """
    rng = np.random.default_rng(seed)
    grid = np.linspace(-20, 36, _N_POINTS)
    names = descriptor_columns("onehot")
    e = 4
    desc = np.zeros((n, e, len(names)), np.float32)
    element_mask = np.zeros((n, e), bool)
    tm_mask = np.zeros((n, e), bool)
    spectra = np.zeros((n, e, _N_POINTS), np.float32)
    elements, valence_sum, height_sum, n_anion = [], np.zeros(n), np.zeros(n), np.zeros(n)
    for i in range(n):
        tms = list(rng.choice(_TMS, size=rng.integers(1, 3), replace=False))
        others = list(rng.choice(_OTHERS, size=rng.integers(1, 3), replace=False))
        symbols = tuple(tms + others)
        elements.append(symbols)
        k = len(symbols)
        desc[i, :k] = descriptor_matrix(symbols, type_encoding="onehot", fill="median")
        element_mask[i, :k] = True
        for j, el in enumerate(symbols):
            if el not in TRANSITION_METALS:
                continue
            tm_mask[i, j] = True
            valence, height = rng.integers(0, 3), rng.uniform(0.5, 2.0)
            mu = (1 / (1 + np.exp(-(grid - 2.0 * valence) / 1.5))
                  + height * np.exp(-0.5 * ((grid - 6 - 2.0 * valence) / 2.5) ** 2)
                  + rng.normal(0, 0.03, _N_POINTS))
            spectra[i, j] = (mu - mu.mean()) / mu.std()
            valence_sum[i] += valence
            height_sum[i] += height
        n_anion[i] = sum(el in ("O", "S", "N", "F") for el in symbols)
    features = FeatureSet(tuple(f"syn-{i}" for i in range(n)), tuple(elements), desc,
                          element_mask, tm_mask, spectra, tm_mask.copy(), names)
    gap = np.clip(0.8 * valence_sum + 0.5 * n_anion - 0.6 * height_sum
                  + rng.normal(0, 0.2, n), 0, None).astype(np.float32)
    density = (3.0 + 0.8 * tm_mask.sum(1) + 0.5 * height_sum
               + rng.normal(0, 0.2, n)).astype(np.float32)
    has_gap = (gap > 0.5).astype(np.int64)
    cls3 = np.minimum(valence_sum.astype(np.int64), 2)
    tasks = {
        "has_band_gap": TaskData(get_task_spec("has_band_gap"), features, has_gap,
                                 ("no gap", "gap")),
        "crystal_system": TaskData(get_task_spec("crystal_system"), features, cls3,
                                   ("low", "mid", "high")),
        "band_gap": TaskData(get_task_spec("band_gap"), features, gap),
        "density": TaskData(get_task_spec("density"), features, density),
    }
    return features, tasks


def per_task(tasks: dict[str, TaskData], profile: Profile,
             split: tuple[np.ndarray, ...]) -> dict[str, dict[str, float]]:
    """Train one model per task; samples/s, wall time and the main test metric."""
    out = {}
    for name, data in tasks.items():
        t0 = time.perf_counter()
        result = train_model(data, profile, seed=0, split=split)
        wall = time.perf_counter() - t0
        metric = "accuracy" if data.spec.kind == "classification" else "mae"
        out[name] = {"samples_per_second": result.samples_per_second,
                     "train_seconds": result.train_seconds, "wall_seconds": wall,
                     "metric": metric, "value": result.metrics[metric],
                     "baseline": result.baseline[metric]}
    return out


def multi_task(tasks: dict[str, TaskData], profile: Profile,
               split: tuple[np.ndarray, ...]) -> dict[str, object]:
    """One shared-encoder model with a head per task (:func:`train_multitask`, summed losses)."""
    data = MultiTaskData.from_task_data(tasks)
    t0 = time.perf_counter()
    result = train_multitask(data, profile, seed=0, split=split)
    wall = time.perf_counter() - t0
    metrics = {}
    for name, spec in data.specs.items():
        metric = "accuracy" if spec.kind == "classification" else "mae"
        metrics[name] = result.metrics[name][metric]
    return {"train_seconds": result.train_seconds, "wall_seconds": wall,
            "samples_per_second": result.samples_per_second, "metrics": metrics}


def latency(repeat: int = 20) -> dict[str, float]:
    """Load fixture-trained models once, then time one compound (two TM spectra)."""
    from specfusion_lib.data.snapshot import load_snapshot
    from specfusion_lib.properties.predict import Predictor
    from specfusion_lib.properties.runs import run_tasks
    from specfusion_lib.spectra.xanes import XANESSpectrum

    snapshot = load_snapshot(ROOT / "tests" / "fixtures" / "snapshot")
    rows = snapshot.spectra

    def spectrum(mid: str, el: str) -> XANESSpectrum:
        r = rows[(rows["material_id"] == mid) & (rows["element"] == el)].iloc[0]
        return XANESSpectrum(np.asarray(r["energy"]), np.asarray(r["mu"]), element=el)

    spectra = {"Mn": spectrum("fx-MnO", "Mn"), "Ni": spectrum("fx-NiO", "Ni")}
    with tempfile.TemporaryDirectory() as tmp:
        run_tasks(snapshot, ["density", "crystal_system", "oxidation_state",
                             "coordination_number"], "smoke", checkpoint_dir=tmp)
        t0 = time.perf_counter()
        predictor = Predictor.from_dir(tmp)
        load_s = time.perf_counter() - t0
        predictor.predict(spectra, ["Mn", "Ni", "O"])  # warm-up
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            table = predictor.predict(spectra, ["Mn", "Ni", "O"])
            times.append(time.perf_counter() - t0)
    return {"load_seconds": load_s, "median_ms": 1000 * statistics.median(times),
            "max_ms": 1000 * max(times), "models": len(predictor.models),
            "rows": len(table)}


def main() -> None:
    """Run the three measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--materials", type=int, default=512)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    profile = Profile("benchmark", seeds=(0,), max_epochs=args.epochs, patience=args.epochs,
                      max_materials=None)
    _, tasks = synthetic_set(args.materials)
    split = split_indices(args.materials, profile.split, 0)
    single = per_task(tasks, profile, split)
    multi = multi_task(tasks, profile, split)
    lat = latency()
    report = {"threads": args.threads, "materials": args.materials, "epochs": args.epochs,
              "train_materials": len(split[0]), "per_task": single, "multi_task": multi,
              "latency": lat}
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"threads {args.threads}, {args.materials} synthetic materials "
          f"({len(split[0])} train), {args.epochs} epochs, batch {profile.batch_size}\n")
    print(f"{'task':16s} {'samples/s':>10s} {'train s':>8s} {'metric':>9s} {'single':>8s} "
          f"{'multi':>8s} {'baseline':>9s}")
    for name, r in single.items():
        print(f"{name:16s} {r['samples_per_second']:10.0f} {r['train_seconds']:8.1f} "
              f"{r['metric']:>9s} {r['value']:8.3f} {multi['metrics'][name]:8.3f} "
              f"{r['baseline']:9.3f}")
    total = sum(r["train_seconds"] for r in single.values())
    print(f"\nper-task total training time {total:.1f} s; multi-task {multi['train_seconds']:.1f}"
          f" s ({multi['samples_per_second']:.0f} samples/s, all four targets per sample)")
    print(f"prediction: load {lat['load_seconds'] * 1000:.0f} ms ({lat['models']} models); one "
          f"compound (Mn, Ni spectra + O) → {lat['rows']} rows: median "
          f"{lat['median_ms']:.1f} ms, max {lat['max_ms']:.1f} ms (target < 200 ms)")


if __name__ == "__main__":
    main()
