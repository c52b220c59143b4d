"""PXRD throughput: simulation, pattern rendering, training, prediction latency (SPEC §9).

Measurements on the current machine (torch CPU threads from ``--threads``, default torch's
own setting as the library's :data:`specfusion_lib.crystal_system.training.CPU_THREADS`; try
``--threads 1`` to compare):

1. **Patterns simulated per second** from structures of a snapshot (``--data``, default the
   demo snapshot, else the test fixture; ``--structures`` of them, default 100):
   (a) :func:`specfusion_lib.spectra.pxrd.simulate_pattern` end to end (pymatgen reflections +
   Voigt sum on 3501 points); (b) reflections only
   (:func:`~specfusion_lib.spectra.pxrd.simulate_peaks`, what the stick cache stores);
   (b') the Voigt sum alone of those reflections, as the library evaluates it (exact within
   30 widths of each peak, analytic tail beyond) and directly (the Faddeeva function on the
   whole grid for every peak), with the largest difference relative to the strongest point;
   (c) rendering realistic training patterns from cached reflections
   (:meth:`specfusion_lib.crystal_system.patterns.StickPatterns.render` under the training
   augmentation: FFT Voigt broadening with random widths, intensity perturbations, zero
   shift, background, noise).
2. **Training samples per second** of the default
   :class:`~specfusion_lib.models.pxrd_net.PXRDCrystalSystemNet` (batch 64, Adam), the
   optimisation alone and including the per-epoch rendering of the augmented patterns.
3. **Prediction latency** of one pattern after loading: a model is trained for one epoch into
   a temporary folder, loaded once
   (:class:`specfusion_lib.crystal_system.training.CrystalSystemPredictor`) and a two-column ``.xy``
   file (Mo Kα, 5–40° 2θ at 0.01°) is read, converted to the Cu Kα grid and classified; median of
   ``--repeats`` calls.

Run::

    .venv/bin/python benchmarks/pxrd.py [--data data/demo] [--structures 100] [--epochs 3]
        [--threads N] [--json]

Numbers are printed as a table (or JSON); nothing is asserted.
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
from pymatgen.core import Structure
from scipy.special import voigt_profile

from specfusion_lib.core.profiles import Profile
from specfusion_lib.crystal_system import training as cs
from specfusion_lib.crystal_system.patterns import TRAINING_CONDITIONS, simulate_sticks
from specfusion_lib.crystal_system.training import (
    CrystalSystemData,
    CrystalSystemPredictor,
    crystal_system_data,
    fit_classifier,
    train_crystal_system_model,
)
from specfusion_lib.data.sources import open_snapshot
from specfusion_lib.data.structure_labels import CRYSTAL_SYSTEMS
from specfusion_lib.models.pxrd_net import PXRDCrystalSystemNet
from specfusion_lib.spectra import pxrd

ROOT = Path(__file__).resolve().parents[1]


def _default_data() -> Path:
    demo = ROOT / "data" / "demo"
    return demo if (demo / "manifest.json").is_file() else ROOT / "tests" / "fixtures" / "snapshot"


def simulation_rates(snapshot, n: int) -> dict[str, float]:
    """Structures per second: full pattern, reflections only, rendering from reflections."""
    rows = snapshot.materials.sample(min(n, len(snapshot.materials)), random_state=0)
    structures = [Structure.from_dict(json.loads(s)) for s in rows["structure"]]
    t0 = time.perf_counter()
    for s in structures:
        pxrd.simulate_pattern(s)
    full = len(structures) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    peaks = [pxrd.simulate_peaks(s, two_theta_range=(8.0, 82.0)) for s in structures]
    sticks_rate = len(structures) / (time.perf_counter() - t0)
    grid = pxrd.two_theta_grid()
    sigma, gamma = pxrd.FWHM_GAUSS * pxrd.FWHM_TO_SIGMA, pxrd.FWHM_LORENTZ / 2
    t0 = time.perf_counter()
    windowed = [pxrd.voigt_profile_pattern(p.two_theta, p.intensity, grid, normalize=False)
                for p in peaks]
    windowed_rate = len(peaks) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    direct = [np.asarray(p.intensity) @ voigt_profile(
        grid[None, :] - np.asarray(p.two_theta)[:, None], sigma, gamma) for p in peaks]
    direct_rate = len(peaks) / (time.perf_counter() - t0)
    deviation = max(float(np.max(np.abs(w - d)) / max(d.max(), 1e-300))
                    for w, d in zip(windowed, direct, strict=True) if d.size and d.max() > 0)
    sticks = simulate_sticks(snapshot, material_ids=list(rows["material_id"]))
    rng = np.random.default_rng(0)
    reps = max(1, 2000 // max(1, len(sticks)))
    idx = np.tile(np.arange(len(sticks)), reps)
    t0 = time.perf_counter()
    sticks.render(idx, rng, TRAINING_CONDITIONS)
    render = len(idx) / (time.perf_counter() - t0)
    return {"structures": len(structures), "simulate_pattern_per_s": full,
            "reflections_per_s": sticks_rate, "voigt_sum_per_s": windowed_rate,
            "voigt_sum_direct_per_s": direct_rate, "voigt_sum_max_deviation": deviation,
            "render_augmented_per_s": render}


def training_rates(data: CrystalSystemData, epochs: int) -> dict[str, float]:
    """Training patterns per second (optimisation; and with per-epoch rendering)."""
    prof = Profile("bench", seeds=(0,), max_epochs=epochs, patience=epochs + 1,
                   max_materials=None)
    n = len(data)
    train_idx = np.arange(n)
    val_idx = np.arange(min(n, 64))
    torch.manual_seed(0)
    model = PXRDCrystalSystemNet(n_points=data.grid.size)
    render_seconds = 0.0

    def inputs(epoch: int) -> list[torch.Tensor]:
        nonlocal render_seconds
        t0 = time.perf_counter()
        x = data.sticks.render(train_idx, np.random.default_rng([0, epoch]), TRAINING_CONDITIONS)
        render_seconds += time.perf_counter() - t0
        return [torch.from_numpy(x)]

    val = [torch.from_numpy(data.measured_patterns(val_idx, 0, 1))]
    t0 = time.perf_counter()
    fit = fit_classifier(model, inputs, torch.as_tensor(data.y[train_idx]), val,
                         torch.as_tensor(data.y[val_idx]), prof, 0)
    wall = time.perf_counter() - t0
    return {"training_patterns": n, "epochs": len(fit.history),
            "train_samples_per_s": fit.samples_per_second,
            "train_samples_per_s_with_rendering": fit.samples_seen / (fit.train_seconds
                                                                      + render_seconds),
            "epoch_wall_s": wall / max(1, len(fit.history))}


def prediction_latency(snapshot, repeats: int) -> dict[str, float]:
    """Load time and median latency of one file → probabilities."""
    prof = Profile("bench", seeds=(0,), max_epochs=1, patience=1, max_materials=64)
    with tempfile.TemporaryDirectory() as tmp:
        run = train_crystal_system_model(snapshot, prof, seed=0, checkpoint_dir=tmp)
        mid = run.split["test"][0]
        row = snapshot.materials.set_index("material_id").loc[mid]
        structure = Structure.from_dict(json.loads(row["structure"]))
        path = pxrd.simulate_pattern(structure, pxrd.two_theta_grid((5.0, 40.0), 0.01),
                                     wavelength="MoKa").to_xy(Path(tmp) / "pattern.xy")
        t0 = time.perf_counter()
        predictor = CrystalSystemPredictor.load(tmp)
        load_s = time.perf_counter() - t0
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            probs = predictor.predict_proba(pxrd.read_pattern(path))
            times.append(time.perf_counter() - t0)
        assert list(probs.columns) == list(CRYSTAL_SYSTEMS)
    return {"load_s": load_s, "latency_ms_median": 1000 * statistics.median(times),
            "latency_ms_min": 1000 * min(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(_default_data()))
    parser.add_argument("--structures", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's own setting)")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    cs.CPU_THREADS = args.threads  # training and prediction use this many threads
    snapshot = open_snapshot(args.data)
    results = {"data": args.data, "threads": torch.get_num_threads()}
    results.update(simulation_rates(snapshot, args.structures))
    data = crystal_system_data(snapshot)
    results.update(training_rates(data, args.epochs))
    results.update(prediction_latency(snapshot, args.repeats))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    width = max(map(len, results))
    for key, value in results.items():
        if isinstance(value, float):
            shown = f"{value:.2g}" if 0 < abs(value) < 0.01 else f"{value:,.2f}"
        else:
            shown = str(value)
        print(f"{key:<{width}}  {shown}")


if __name__ == "__main__":
    main()
