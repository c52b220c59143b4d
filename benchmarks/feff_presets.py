"""FEFF10 presets against measured spectra: fidelity per CPU second, on the development half.

Runs :func:`specfusion_lib.measured.preset_study.run_preset_study` for the measured
transition-metal compounds of the development half (``data/measured_halves.json``) with the
presets ``--presets`` (default ``fast`` and ``fast-scf``) and, for the compounds named in
``--paper-for``, the SI's ``paper`` preset (2-5 minutes per site on one core). Spectra go to a
resumable FEFF cache (default ``data/feff_presets/cache``, committed so that a rerun only
reads it); the per-record table goes to ``data/feff_presets/preset_study_<half>.csv`` and
the per-preset summary is printed, with the preset :func:`~specfusion_lib.measured.
preset_study.choose_preset` picks (cost cap 2x ``fast``). ``--half scoring`` reports the
scoring half for the record, never to choose.

Usage::

    python benchmarks/feff_presets.py [--presets fast fast-scf] [--paper-for K2CrO4 MnO]
                                      [--half development] [--workers 2]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd

from specfusion_lib.data.measured import read_measured_xanes
from specfusion_lib.data.snapshot import load_snapshot
from specfusion_lib.measured.halves import load_halves
from specfusion_lib.measured.preset_study import choose_preset, preset_summary, run_preset_study

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presets", nargs="+", default=["fast", "fast-scf"])
    parser.add_argument("--paper-for", nargs="*", default=["K2CrO4", "MnO", "VO2"])
    parser.add_argument("--half", default="development", choices=["development", "scoring"])
    parser.add_argument("--snapshot", default=str(ROOT / "data" / "demo"))
    parser.add_argument("--out", default=str(ROOT / "data" / "feff_presets"))
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    records = read_measured_xanes()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    study = run_preset_study(
        records, load_snapshot(args.snapshot), load_halves(records), out / "cache",
        presets=args.presets, presets_for={"paper": args.paper_for} if args.paper_for else None,
        half=args.half, workers=args.workers)
    table = out / f"preset_study_{args.half}.csv"
    study.to_csv(table, index=False, float_format="%.4f")
    summary = preset_summary(study)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary.round(3).to_string(index=False))
    if args.half == "development":
        preset, reason = choose_preset(summary)
        print(f"\nchosen default preset: {preset} ({reason})")
    print(f"per-record table: {table}")


if __name__ == "__main__":
    main()
