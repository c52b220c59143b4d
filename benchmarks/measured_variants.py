"""Model variants on the measured spectra of the development half, over several seeds.

The choice "train the oxidation-state / CN models with domain randomisation" is made here,
on the development half of the measured compounds only (``data/measured_halves.json``); the
scoring half is not printed. For each seed and variant (default ``baseline`` and
``randomised``) the models of notebook 11 are trained without the measured compounds
(:func:`specfusion_lib.measured.study.train_validation_models`, profile ``--profile``), applied
to the measured and the simulated spectra of the development half and scored with
:func:`specfusion_lib.measured.scores.structural_scores`. Prints correct / n per seed and the
mean accuracy per variant; writes the long table to ``--out``.

Usage::

    python benchmarks/measured_variants.py [--seeds 0 1 2] [--variants baseline randomised]
                                           [--profile quick] [--out build/measured_variants.csv]
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import replace
from pathlib import Path

import pandas as pd

from specfusion_lib.core.profiles import get_profile
from specfusion_lib.data.measured import read_measured_xanes
from specfusion_lib.data.snapshot import load_snapshot
from specfusion_lib.measured import study
from specfusion_lib.measured.halves import load_halves
from specfusion_lib.measured.scores import structural_scores
from specfusion_lib.properties.features import build_features

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("oxidation_state", "coordination_number")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=["baseline", "randomised"])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--snapshot", default=str(ROOT / "data" / "demo"))
    parser.add_argument("--checkpoints", default=str(ROOT / "build" / "measured_variants"))
    parser.add_argument("--out", default=str(ROOT / "build" / "measured_variants.csv"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    snapshot = load_snapshot(args.snapshot)
    records = read_measured_xanes()
    halves = load_halves(records)
    matches = study.match_measured(records, snapshot)
    train, holdout = study.validation_features(snapshot, records, matches,
                                               build_features(snapshot))
    rows = []
    for seed in args.seeds:
        profile = replace(get_profile(args.profile), seeds=(seed,))
        for variant in args.variants:
            models = study.train_validation_models(
                snapshot, train, TASKS, profile, Path(args.checkpoints) / f"seed{seed}",
                variant=variant, seed=seed)
            compared = study.compare_with_references(
                study.predict_records(models, records, matches), snapshot, records)
            scores = structural_scores(compared, snapshot, halves,
                                       exclude_formulas=list(holdout.formulas))
            dev = scores.loc[(scores["split"] == "development") & (scores["element"] == "all")]
            rows.append(dev.assign(seed=seed))
    table = pd.concat(rows, ignore_index=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    table["cell"] = table["correct"].astype(str) + "/" + table["n"].astype(str)
    with pd.option_context("display.width", 200):
        print("development half, correct / n per seed:")
        print(table.pivot_table(index=["input", "task", "variant"], columns="seed",
                                values="cell", aggfunc="first").to_string())
        print("\nmean accuracy over seeds:")
        print(table.groupby(["input", "task", "variant"])["accuracy"].mean().unstack()
              .round(3).to_string())
    print(f"\nlong table: {args.out}")


if __name__ == "__main__":
    main()
