"""Command-line interface: ``specfusion <command> ...`` (also ``python -m specfusion_lib``).

The commands call the same library functions as the notebooks. Errors raised on purpose by
the library (:class:`~specfusion_lib.core.errors.SpecfusionError`) are printed as one line,
``error: <message>``, with exit status 2; anything else is a bug and shows its traceback.

Log records of the library (job start and end, cache hits, skipped or failed items, files
written) go to standard error at the level of the global ``--log-level`` option. Its default
is INFO, not WARNING: the commands are whole jobs (downloads, FEFF builds, structure searches)
that run for minutes to hours, and their INFO records are the record of what a run did; they
never mix with the results, which go to standard output. Without the option the level comes
from ``SPECFUSION_LOG_LEVEL`` when that is set.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from specfusion_lib import __version__
from specfusion_lib.core.errors import SpecfusionError
from specfusion_lib.core.logs import configure_logging

__all__ = ["DEFAULT_LOG_LEVEL", "build_parser", "main"]

#: Log level of the command line when neither ``--log-level`` nor ``SPECFUSION_LOG_LEVEL``
#: is given (see the module docstring for why INFO).
DEFAULT_LOG_LEVEL = "INFO"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def _cmd_fetch_mp(args: argparse.Namespace) -> int:
    from specfusion_lib.data.mp import fetch_mp_snapshot

    path = fetch_mp_snapshot(
        args.out,
        api_key=args.api_key,
        elements_range=(args.min_elements, args.max_elements),
        max_materials=args.max_materials,
        chunk_size=args.chunk_size,
    )
    print(f"wrote Materials Project snapshot {path}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from specfusion_lib.data.snapshot import verify_snapshot

    manifest = verify_snapshot(args.path)
    print(f"{args.path}: OK ({len(manifest['files'])} files verified, "
          f"snapshot id {manifest['snapshot_id'][:16]}…)")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from specfusion_lib.data.snapshot import verify_snapshot

    manifest = verify_snapshot(args.path)
    shown = {k: manifest[k] for k in ("source", "description", "created", "snapshot_id",
                                      "counts", "label_sources") if k in manifest}
    print(json.dumps(shown, indent=2))
    return 0


def _cmd_build_fixture(args: argparse.Namespace) -> int:
    from specfusion_lib.data.fixture import build_fixture_snapshot

    path = build_fixture_snapshot(args.out, overwrite=args.overwrite)
    print(f"wrote fixture snapshot {path}")
    return 0


def _cmd_build_demo(args: argparse.Namespace) -> int:
    from specfusion_lib.data.demo import build_demo_snapshot

    path = build_demo_snapshot(
        args.out, build_dir=args.build_dir, executor=args.executor, workers=args.workers,
        scheduler_address=args.scheduler, simulate=not args.assemble_only,
        max_materials=args.max_materials, preset=args.preset,
        **({} if args.xanes_count is None else {"xanes_count": args.xanes_count}))
    print(f"wrote demo snapshot {path}")
    return 0


def _cmd_preprocess_xanes(args: argparse.Namespace) -> int:
    import pandas as pd

    from specfusion_lib.spectra.xanes import preprocess_xanes
    from specfusion_lib.spectra.xanes_readers import read_xanes

    spectrum = read_xanes(args.file, element=args.element, edge=args.edge)
    processed = preprocess_xanes(spectrum, e0=args.e0, standardize=not args.no_standardize)
    table = pd.DataFrame({"e_minus_e0_ev": processed.grid, "value": processed.values})
    if args.out:
        table.to_csv(args.out, index=False)
        print(f"E0 = {processed.e0:.2f} eV; wrote {len(table)} points to {args.out}")
    else:
        print(f"# E0 = {processed.e0:.2f} eV, element {spectrum.element}, edge {spectrum.edge}")
        print(table.to_csv(index=False), end="")
    return 0


def _cmd_simulate_pxrd(args: argparse.Namespace) -> int:
    from pymatgen.core import Structure

    from specfusion_lib.core.errors import InputFileError
    from specfusion_lib.spectra.pxrd import simulate_pattern

    try:
        structure = Structure.from_file(args.structure)
    except (OSError, ValueError) as exc:
        raise InputFileError(f"{args.structure}: cannot read a structure ({exc})") from exc
    pattern = simulate_pattern(structure)
    pattern.to_xy(args.out)
    print(f"wrote {len(pattern.two_theta)}-point Cu Kα pattern to {args.out}")
    return 0


def _cmd_figures_index(args: argparse.Namespace) -> int:
    from specfusion_lib.plotting.figures_index import write_index

    print(f"wrote {write_index(args.figures_dir)}")
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from specfusion_lib.properties.predict import Predictor, assign_spectra, predictions_to_json

    predictor = Predictor.from_dir(args.checkpoint_dir, args.task or None,
                                   all_element=args.all_element)
    spectra = assign_spectra(args.xanes, args.elements, edge=args.edge)
    table = predictor.predict(spectra, args.elements)
    if args.json:
        print(predictions_to_json(
            table, elements=list(args.elements),
            spectra={el: s.source for el, s in spectra.items()},
            checkpoint_dir=str(args.checkpoint_dir)))
        return 0
    shown = table.assign(
        prediction=[f"{v:.3f}" if isinstance(v, float) else str(v)
                    for v in table["prediction"]],
        probabilities=[", ".join(f"{c} {p:.2f}" for c, p in sorted(
            d.items(), key=lambda kv: -kv[1])[:4]) for d in table["probabilities"]])
    shown = shown[["task", "element", "prediction", "unit", "probabilities", "n_models",
                   "note"]]
    print(f"# {' '.join(args.elements)}: "
          + ", ".join(f"{el} <- {s.source}" for el, s in spectra.items()))
    print(shown.to_string(index=False))
    return 0


def _cmd_predict_xanes(args: argparse.Namespace) -> int:
    if args.calibrated is not None:
        from specfusion_lib.xas_structure.user_calibration import predict_calibrated

        spectrum = predict_calibrated(args.structure, args.element, model=args.calibrated)
    else:
        from specfusion_lib.xas_structure.user import predict_xanes

        spectrum = predict_xanes(args.structure, args.element, model_dir=args.model_dir)
    if args.out:
        print(f"wrote {spectrum.to_csv(args.out)}")
    else:
        print("energy_eV,mu_norm")
        for e, m in zip(spectrum.energy, spectrum.mu, strict=True):
            print(f"{e:.3f},{m:.6f}")
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from specfusion_lib.xas_structure.user_calibration import calibrate

    path = calibrate(args.measured, variant=args.variant, model=args.model, out=args.out,
                     seed=args.seed)
    print(f"wrote {path} (variant {args.variant}); use it with `specfusion predict-xanes "
          f"STRUCTURE --element X --calibrated {path}`")
    return 0


def _cmd_local_structure(args: argparse.Namespace) -> int:
    from specfusion_lib.xas_structure.user import local_structure

    result = local_structure(args.spectrum, args.element, model_dir=args.model_dir)
    print(f"# {args.spectrum}")
    print("\n".join(result.lines()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``specfusion`` command."""
    parser = argparse.ArgumentParser(
        prog="specfusion",
        description="Machine learning from X-ray spectra (XANES + PXRD): data, "
                    "preprocessing and the paper's figures.")
    parser.add_argument("--version", action="version", version=f"specfusion {__version__}")
    parser.add_argument(
        "--log-level", type=str.upper, choices=_LOG_LEVELS, default=None, metavar="LEVEL",
        help="log level of the library's messages on stderr: DEBUG, INFO, WARNING, ERROR or "
             f"CRITICAL (default: $SPECFUSION_LOG_LEVEL, else {DEFAULT_LOG_LEVEL})")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="build, download and check data snapshots")
    data_cmds = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    fetch = data_cmds.add_parser(
        "fetch-mp", help="download a Materials Project snapshot (needs MP_API_KEY)",
        description="Download materials (2–5 elements, ≥1 transition metal, no noble gases "
                    "by default), their structures, summary labels and every K-edge XANES "
                    "of the XAS collection into a snapshot. Resumes after interruption.")
    fetch.add_argument("--out", default="data/mp", help="snapshot folder (default data/mp)")
    fetch.add_argument("--api-key", default=None,
                       help="Materials Project API key (default: $MP_API_KEY)")
    fetch.add_argument("--min-elements", type=int, default=2)
    fetch.add_argument("--max-elements", type=int, default=5)
    fetch.add_argument("--max-materials", type=int, default=None,
                       help="stop after this many materials (for a trial run)")
    fetch.add_argument("--chunk-size", type=int, default=500)
    fetch.set_defaults(func=_cmd_fetch_mp)
    verify = data_cmds.add_parser("verify", help="verify a snapshot's checksums")
    verify.add_argument("path")
    verify.set_defaults(func=_cmd_verify)
    info = data_cmds.add_parser("info", help="verify a snapshot and print its manifest summary")
    info.add_argument("path")
    info.set_defaults(func=_cmd_info)
    fixture = data_cmds.add_parser(
        "build-fixture", help="rebuild the small test snapshot (runs FEFF10, minutes)")
    fixture.add_argument("--out", default="tests/fixtures/snapshot")
    fixture.add_argument("--overwrite", action="store_true")
    fixture.set_defaults(func=_cmd_build_fixture)

    demo = data_cmds.add_parser(
        "build-demo", help="build or continue the embedded demo snapshot (FEFF10, hours)",
        description="Simulate the missing K-edge XANES of the structure pool with FEFF10 "
                    "(resumable cache), compute labels and write the demo snapshot. Rerun to "
                    "continue an interrupted build.")
    demo.add_argument("--out", default="data/demo")
    demo.add_argument("--build-dir", default="data/demo_build",
                      help="pool, FEFF cache and label cache (default data/demo_build)")
    demo.add_argument("--executor", default="auto", choices=["auto", "process", "dask",
                                                               "serial"])
    demo.add_argument("--workers", type=int, default=None, help="local FEFF processes")
    demo.add_argument("--scheduler", default=None,
                      help="Dask scheduler address (tcp://host:8786) to run FEFF on a cluster")
    demo.add_argument("--max-materials", type=int, default=None)
    demo.add_argument("--xanes-count", type=int, default=None,
                      help="pool compounds whose TM K edges are simulated (default 1600; the "
                           "rest of the pool enters the snapshot for PXRD only)")
    demo.add_argument("--assemble-only", action="store_true",
                      help="write the snapshot from the cache without running FEFF")
    demo.add_argument("--preset", default="fast",
                      help="FEFF card preset (default fast, the committed demo; fast-scf is "
                           "the preset chosen against measured spectra)")
    demo.set_defaults(func=_cmd_build_demo)

    prep = commands.add_parser(
        "preprocess-xanes", help="read a XANES file and print/write the model-ready 200 points",
        description="Read a two-column, CSV (omega,mu) or XDI file, find E0, normalise the "
                    "edge step, resample the window around E0 and standardise.")
    prep.add_argument("file")
    prep.add_argument("--element", required=True, help="absorbing element, e.g. Fe")
    prep.add_argument("--edge", default="K")
    prep.add_argument("--e0", type=float, default=None, help="explicit E0 in eV")
    prep.add_argument("--no-standardize", action="store_true",
                      help="keep the edge-step-normalised values")
    prep.add_argument("--out", default=None, help="CSV to write (default: stdout)")
    prep.set_defaults(func=_cmd_preprocess_xanes)

    pxrd = commands.add_parser("simulate-pxrd",
                               help="simulate a broadened Cu Kα powder pattern of a structure")
    pxrd.add_argument("structure", help="CIF, POSCAR or any file pymatgen reads")
    pxrd.add_argument("--out", required=True, help="two-column .xy file to write")
    pxrd.set_defaults(func=_cmd_simulate_pxrd)

    pred = commands.add_parser(
        "predict", help="predict every property of a compound from its XANES files",
        description="Load every model checkpoint of --checkpoint-dir and predict each "
                    "property (class probabilities or values) of one compound. Each --xanes "
                    "file is assigned to the element whose K edge it shows (or write "
                    "El=file). Spectra of the wrong element and elements the models never "
                    "saw in training are refused.")
    pred.add_argument("--xanes", action="append", required=True, metavar="FILE",
                      help="XANES file (two-column, CSV omega,mu, XDI); repeat per TM; "
                           "El=FILE names the element")
    pred.add_argument("--elements", nargs="+", required=True, metavar="EL",
                      help="every element of the compound, e.g. Fe Ti O")
    pred.add_argument("--checkpoint-dir", default="build/checkpoints",
                      help="folder of model checkpoints (default build/checkpoints)")
    pred.add_argument("--task", action="append", default=None,
                      help="only this task (repeatable; default: every checkpoint)")
    pred.add_argument("--edge", default="K")
    pred.add_argument("--all-element", action="store_true",
                      help="use the all-element models (Fig. 2h) instead of the TM-only ones")
    pred.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pred.set_defaults(func=_cmd_predict)

    from specfusion_lib.cli.crystal_system import add_predict_crystal_system_parser

    add_predict_crystal_system_parser(commands)
    from specfusion_lib.cli.infer_structure import add_infer_structure_parser

    add_infer_structure_parser(commands)

    pxas = commands.add_parser(
        "predict-xanes", help="predict a K-edge XANES from a structure (XAStruct forward)")
    pxas.add_argument("structure", help="structure file (CIF, POSCAR, ...)")
    pxas.add_argument("--element", required=True, help="absorbing element")
    pxas.add_argument("--out", help="CSV file for the spectrum (default: print it)")
    pxas.add_argument("--model-dir", default="build/xastruct",
                      help="where the model is kept (trained on the demo on first use)")
    pxas.add_argument("--calibrated", nargs="?", const="build/cgxas/calibrated.pt",
                      default=None, metavar="CHECKPOINT",
                      help="use the CGXAS model calibrated by `specfusion calibrate` "
                           "(default path build/cgxas/calibrated.pt) instead of XAStruct")
    pxas.set_defaults(func=_cmd_predict_xanes)
    calib = commands.add_parser(
        "calibrate", help="calibrate the universal CGXAS model to your measured spectra")
    calib.add_argument("--measured", required=True, metavar="DIR_OR_CSV",
                       help="folder of spectrum files each with <name>.cif, or a CSV table "
                            "with columns spectrum, structure[, element]")
    calib.add_argument("--variant", default="d_everything",
                       choices=("a_last_layer", "b_layerwise", "c_shift_broaden",
                                "d_everything"),
                       help="what to fine-tune (default: everything, the variant notebook "
                            "15's nested leave-one-compound-out choice picked most often)")
    calib.add_argument("--model", default=None,
                       help="universal-model checkpoint (default: the shipped one)")
    calib.add_argument("--out", default="build/cgxas/calibrated.pt",
                       help="where the calibrated model is written")
    calib.add_argument("--seed", type=int, default=0)
    calib.set_defaults(func=_cmd_calibrate)
    loc = commands.add_parser(
        "local-structure", help="CN, MNND and neighbour type from a K-edge spectrum (XAStruct "
        "inverse)")
    loc.add_argument("spectrum", help="spectrum file (XDI, columns, CSV)")
    loc.add_argument("--element", required=True, help="absorbing element")
    loc.add_argument("--model-dir", default="build/xastruct",
                     help="where the models are kept (trained on the demo on first use)")
    loc.set_defaults(func=_cmd_local_structure)

    index = commands.add_parser("figures-index", help="rewrite figures/README.md")
    index.add_argument("--figures-dir", default="figures")
    index.set_defaults(func=_cmd_figures_index)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``specfusion`` console script."""
    args = build_parser().parse_args(argv)
    if args.log_level is None:
        configure_logging(DEFAULT_LOG_LEVEL)  # SPECFUSION_LOG_LEVEL, when set, wins
    else:
        configure_logging(args.log_level, env=False)
    try:
        return int(args.func(args))
    except SpecfusionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
