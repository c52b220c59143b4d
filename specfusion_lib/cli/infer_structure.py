"""``specfusion infer-structure``: spectra files in, ranked candidate structures (CIF) out.

::

    specfusion infer-structure --xanes Mn.csv --pxrd pattern.xy --elements Ca Mn Al O \\
        --checkpoint-dir build/checkpoints --data data/demo --out inferred/ --n-candidates 4

Steps: the XANES models of ``--checkpoint-dir`` predict each TM's oxidation state and
coordination number (:class:`~specfusion_lib.properties.predict.Predictor`), the PXRD model there
predicts the crystal-system probabilities
(:class:`~specfusion_lib.crystal_system.training.CrystalSystemPredictor`); the search
(:func:`~specfusion_lib.inference.search.infer_structure`) uses the structures of the
``--data`` snapshot as templates (plus the Materials Project with ``--mp`` and a key), relaxes
and simulates ``--n-candidates`` candidates (CHGNet, PXRD, FEFF10 XANES) and
:func:`~specfusion_lib.inference.search.write_candidates` writes the CIF files and tables to
``--out``. ``--oxidation-state`` and ``--crystal-system`` replace a prediction by a known
value; with both given for every TM the models are not needed (the CN is then unconstrained).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from specfusion_lib.inference.verdict import NO_MATCH_R_PXRD

__all__ = ["add_infer_structure_parser"]


def _states(items: list[str] | None) -> dict[str, list[int]]:
    from specfusion_lib.core.elements import normalize_symbol
    from specfusion_lib.core.errors import ConfigurationError

    out: dict[str, list[int]] = {}
    for item in items or []:
        m = re.fullmatch(r"([A-Za-z]{1,2})=([+-]?\d+(?:,[+-]?\d+)*)", item.strip())
        if not m:
            raise ConfigurationError(f"--oxidation-state {item!r}: expected El=N or "
                                     "El=N,M (e.g. Mn=3 or Cu=1,2)")
        out[normalize_symbol(m.group(1))] = [int(v) for v in m.group(2).split(",")]
    return out


def _cmd_infer_structure(args: argparse.Namespace) -> int:
    import pandas as pd

    from specfusion_lib.core.elements import TRANSITION_METALS, normalize_symbol
    from specfusion_lib.crystal_system.training import CrystalSystemPredictor
    from specfusion_lib.data.sources import open_snapshot
    from specfusion_lib.inference.candidates import FeffXanesSimulator
    from specfusion_lib.inference.formulas import enumerate_formulas
    from specfusion_lib.inference.search import (
        SearchSettings,
        expected_state,
        infer_structure,
        state_probabilities,
        write_candidates,
    )
    from specfusion_lib.inference.templates import (
        TemplateDatabase,
        crystal_system_order,
        fetch_mp_templates,
    )
    from specfusion_lib.properties.predict import Predictor, assign_spectra
    from specfusion_lib.spectra.pxrd import read_pattern, to_grid, wavelength_angstrom

    elements = [normalize_symbol(e) for e in args.elements]
    spectra = assign_spectra(args.xanes, elements, edge=args.edge)
    overrides = _states(args.oxidation_state)
    oxidation: dict[str, Any] = {}
    ox_probabilities: dict[str, dict[int, float]] = {}
    coordination: dict[str, int] = {}
    tms = [el for el in elements if el in TRANSITION_METALS]
    if tms and not set(tms) <= set(overrides):
        predictor = Predictor.from_dir(args.checkpoint_dir,
                                       ["oxidation_state", "coordination_number"])
        table = predictor.predict(spectra, elements)
        for r in table.itertuples():
            value = int(round(float(r.prediction)))
            if r.task == "oxidation_state":
                oxidation[r.element] = value
                if r.element not in overrides and (probs := state_probabilities(
                        r.probabilities)):
                    ox_probabilities[r.element] = probs
            else:
                coordination[r.element] = value
    oxidation.update(overrides)
    wavelength: str | float | None = args.wavelength
    if wavelength is not None:
        try:
            wavelength = float(wavelength)
        except ValueError:
            wavelength_angstrom(wavelength)  # ConfigurationError for an unknown name
    pattern = to_grid(read_pattern(args.pxrd, wavelength=wavelength))
    if args.crystal_system:
        probabilities: dict[str, float] = {args.crystal_system.lower(): 1.0}
    elif args.crystal_model == "cnn":
        cs_predictor = CrystalSystemPredictor.load(args.checkpoint_dir)
        probabilities = cs_predictor.predict_proba(pattern).iloc[0].to_dict()
    else:
        from specfusion_lib.crystal_system.peak_classifier import PeakIndexingClassifier

        probabilities = PeakIndexingClassifier.load().predict_patterns(pattern).iloc[0].to_dict()
    database = TemplateDatabase.from_snapshot(open_snapshot(args.data))
    settings = SearchSettings(n_validate=args.n_candidates, simulate_xanes=not args.no_feff,
                              min_probability=args.min_probability,
                              coverage=args.coverage,
                              max_hypotheses=args.top_k,
                              no_match_r_pxrd=(None if args.no_match_r_pxrd < 0
                                               else args.no_match_r_pxrd),
                              ranking=args.ranking, progress=True)
    forward = None
    if args.ranking != "feff":
        from specfusion_lib.xas_structure.cgxas import CGXASForward
        from specfusion_lib.xas_structure.cgxas_study import SHIPPED_CHECKPOINT

        forward = CGXASForward.load(args.forward_model or SHIPPED_CHECKPOINT)
    if args.mp:
        enumeration = enumerate_formulas(elements, oxidation)
        systems = [s for s, _ in crystal_system_order(
            probabilities, settings.retrieval.max_crystal_systems,
            settings.retrieval.min_system_probability)]
        database = database.combine(fetch_mp_templates(
            enumeration.table["anonymous_formula"].unique().tolist(), systems,
            api_key=args.api_key))
    print(f"# {' '.join(elements)}: oxidation states {oxidation or 'common'}, CN "
          f"{coordination or 'free'}; crystal system "
          + ", ".join(f"{k} {v:.2f}" for k, v in sorted(probabilities.items(),
                                                         key=lambda kv: -kv[1])[:3]))
    for el, probs in ox_probabilities.items():
        print(f"# {el}: average oxidation state {expected_state(probs):.2f} (expected value "
              "of the model's state probabilities; between two states it suggests mixed "
              "valence)")
    result = infer_structure(elements, oxidation, coordination, probabilities, database,
                             pxrd=pattern, xanes=spectra, settings=settings,
                             xanes_simulator=FeffXanesSimulator(workers=args.workers,
                                                                progress=True),
                             oxidation_state_probabilities=ox_probabilities,
                             forward_model=forward)
    hypotheses = result.inputs.hypotheses()
    if not hypotheses.empty:
        print("# hypotheses weighed (searched: the most probable oxidation states up to "
              "--coverage, none below --min-probability, at most --top-k per element; mixed "
              "valence of two searched states one apart; crystal systems as the retrieval "
              "settings allow)")
        print(hypotheses.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    summary = write_candidates(result, args.out)
    shown = pd.read_csv(summary).head(args.show)
    columns = ["final_rank", "stage", "formula", "crystal_system", "template_formula",
               "level", "r_pxrd", "xanes_similarity", "cif"]
    if result.verdict:
        widened = " after widening the hypotheses" if result.widened else ""
        print(f"# verdict: {result.verdict.upper()}{widened} (best R_PXRD "
              f"{result.best_r_pxrd:.3f}, threshold {settings.no_match_r_pxrd:.3f})"
              + ("; the candidates below are the closest, not answers"
                 if result.verdict == "no match" else ""))
    print(shown[columns].to_string(index=False))
    print(f"wrote {summary} and the CIF files of the candidates to {args.out}")
    return 0


def add_infer_structure_parser(commands: Any) -> argparse.ArgumentParser:
    """Register ``specfusion infer-structure`` on an argparse subparsers object.

    Returns:
        The subcommand's parser; its ``func`` default runs the command and returns the exit
        status (library errors propagate as
        :class:`~specfusion_lib.core.errors.SpecfusionError` subclasses, which ``specfusion``
        prints as one line).
    """
    cmd = commands.add_parser(
        "infer-structure",
        help="candidate crystal structures from XANES + PXRD (formulas, templates, CIFs)",
        description="Predict the TM oxidation states and coordination numbers (XANES "
                    "models) and the crystal system (PXRD model), enumerate charge-balanced "
                    "formulas, retrieve templates from a snapshot (and the Materials Project "
                    "with --mp), build, relax (CHGNet) and simulate (PXRD, FEFF10 XANES) the "
                    "best candidates, and write them ranked as CIF files with summary tables.")
    cmd.add_argument("--xanes", action="append", required=True, metavar="FILE",
                     help="XANES file of a transition metal (two-column, CSV omega,mu, XDI); "
                          "repeat per TM; El=FILE names the element")
    cmd.add_argument("--pxrd", required=True, metavar="FILE",
                     help="powder pattern: two columns 2θ (degrees), intensity")
    cmd.add_argument("--elements", nargs="+", required=True, metavar="EL",
                     help="every element of the compound, e.g. Ca Mn Al O")
    cmd.add_argument("--checkpoint-dir", default="build/checkpoints",
                     help="XANES and PXRD model checkpoints (default build/checkpoints)")
    cmd.add_argument("--data", default="data/demo",
                     help="snapshot whose structures serve as templates (default data/demo)")
    cmd.add_argument("--out", default="inferred_structures",
                     help="output folder for CIF files and tables")
    cmd.add_argument("--n-candidates", type=int, default=4,
                     help="candidates relaxed and simulated (FEFF: 5-30 s per spectrum)")
    cmd.add_argument("--no-match-r-pxrd", type=float, default=NO_MATCH_R_PXRD,
                     help="R_PXRD above which the best candidate is no match (default "
                          f"{NO_MATCH_R_PXRD}, set on the validation half of notebook 09's "
                          "compounds; negative: no verdict)")
    cmd.add_argument("--top-k", type=int, default=3,
                     help="most oxidation states searched per TM (default 3)")
    cmd.add_argument("--min-probability", type=float, default=0.05,
                     help="least model probability of a searched oxidation state (default "
                          "0.05; the most probable state is always searched)")
    cmd.add_argument("--coverage", type=float, default=0.95,
                     help="search the most probable oxidation states until their "
                          "probabilities sum to this (default 0.95)")
    cmd.add_argument("--oxidation-state", action="append", metavar="El=N",
                     help="use a known oxidation state instead of the prediction (repeatable)")
    cmd.add_argument("--crystal-model", choices=("peaks", "cnn"), default="peaks",
                     help="crystal-system classifier: the shipped peak-feature + indexing "
                          "model that holds on real structures (default), or notebook 07's "
                          "CNN-Transformer checkpoint in --checkpoint-dir")
    cmd.add_argument("--crystal-system", default=None,
                     help="use a known crystal system instead of the PXRD prediction")
    cmd.add_argument("--wavelength", default=None,
                     help="radiation of the pattern (CuKa, MoKa, ... or Å); default: the "
                          "file's '# wavelength:' comment")
    cmd.add_argument("--edge", default="K")
    cmd.add_argument("--mp", action="store_true",
                     help="also retrieve templates from the Materials Project (MP_API_KEY)")
    cmd.add_argument("--api-key", default=None, help="Materials Project API key")
    cmd.add_argument("--no-feff", action="store_true",
                     help="skip the FEFF10 XANES of the candidates (rank by PXRD only)")
    cmd.add_argument("--ranking", choices=("feff", "model", "hybrid"), default="feff",
                     help="feff: CHGNet + FEFF10 validate the PXRD screen's best; model: the "
                          "forward model (CGXAS) scores the XANES of every screened candidate, "
                          "no FEFF; hybrid: the model orders, FEFF validates its best")
    cmd.add_argument("--forward-model", default=None, metavar="PATH",
                     help="CGXAS checkpoint for --ranking model/hybrid (default: the shipped "
                          "one; a calibrated one from `specfusion calibrate` works too)")
    cmd.add_argument("--workers", type=int, default=2, help="parallel FEFF processes")
    cmd.add_argument("--show", type=int, default=10, help="rows of the ranking printed")
    cmd.set_defaults(func=_cmd_infer_structure)
    return cmd
