"""``specfusion predict-crystal-system``: the command line of
:mod:`specfusion_lib.crystal_system.training`.

Kept apart from the model code so that building the ``specfusion`` parser imports neither
torch nor pymatgen; they are loaded when the command runs.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

__all__ = ["add_predict_crystal_system_parser"]



def _cmd_predict_crystal_system(args: argparse.Namespace) -> int:
    from specfusion_lib.crystal_system.training import predict_crystal_system
    from specfusion_lib.spectra import pxrd

    wavelength: str | float | None = args.wavelength
    if isinstance(wavelength, str):
        try:
            wavelength = float(wavelength)
        except ValueError:
            pxrd.wavelength_angstrom(wavelength)  # raises ConfigurationError when unknown
    probs = predict_crystal_system(args.pattern, args.checkpoint_dir, wavelength=wavelength)
    if args.json:
        print(json.dumps({"pattern": str(args.pattern),
                          "checkpoint_dir": str(args.checkpoint_dir),
                          "prediction": str(probs.index[0]),
                          "probabilities": {k: float(v) for k, v in probs.items()}}, indent=2))
        return 0
    print(f"# {args.pattern}: most probable crystal system {probs.index[0]}")
    for name, p in probs.items():
        print(f"{name:<13} {p:6.3f}")
    return 0


def add_predict_crystal_system_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``specfusion predict-crystal-system`` on an argparse subparsers object.

    Returns:
        The subcommand's parser (its ``func`` default runs the command and returns the exit
        status; library errors propagate as
        :class:`~specfusion_lib.core.errors.SpecfusionError` subclasses).
    """
    cmd = commands.add_parser(
        "predict-crystal-system",
        help="crystal-system probabilities of a powder pattern (PXRD CNN-Transformer)",
        description="Read a two-column 2θ/intensity pattern (any step; at least 100 points; "
                    "it must cover at least half of 10–80° 2θ after conversion to Cu Kα), "
                    "put it on the model's grid and print the probability of each of the "
                    "seven crystal systems. Models: the pxrd-crystal-system-seed<N>.pt "
                    "checkpoints written by notebook 07 (seeds are averaged).")
    cmd.add_argument("pattern", help="two-column file: 2θ in degrees, intensity")
    cmd.add_argument("--wavelength", default=None,
                     help="radiation of the measurement: a name (CuKa, MoKa, CoKa, ...) or a "
                          "value in Å (default: the file's '# wavelength:' comment)")
    cmd.add_argument("--checkpoint-dir", default="build/checkpoints",
                     help="folder of the PXRD checkpoints (default build/checkpoints)")
    cmd.add_argument("--json", action="store_true", help="print JSON instead of a table")
    cmd.set_defaults(func=_cmd_predict_crystal_system)
    return cmd
