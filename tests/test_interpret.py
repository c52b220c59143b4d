"""Interpretability: Grad-CAM maps, region integrals, deletion curves, ablations, examples."""

from __future__ import annotations

import math
from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from specfusion_lib import interpret
from specfusion_lib.core.elements import descriptor_columns, descriptor_matrix
from specfusion_lib.interpret.ablation import (
    ABLATIONS,
    BASELINE,
    GROUP_LABELS,
    NOISE,
    NOISE_SEED_OFFSET,
    PAPER_STATEMENTS,
    AblationStudy,
)
from specfusion_lib.models import SpecFusionNet, count_parameters
from specfusion_lib.plotting import interpret as interpret_plots
from specfusion_lib.properties.features import (
    DESCRIPTOR_GROUPS,
    FeatureSet,
    descriptor_group_indices,
)
from specfusion_lib.properties.runs import NOT_AVAILABLE

torch.set_num_threads(1)

L = 200
SMALL = {"d_model": 32, "conv_channels": (8, 16), "pooled_length": 8, "element_hidden": 16,
         "fusion_hidden": 32, "n_heads": 4, "n_attention_layers": 1, "ffn_dim": 32,
         "head_hidden": 16}
COMPOUNDS = [("c-YTi", ("Y", "Ti", "O")), ("c-Fe", ("Fe", "O")), ("c-NiS", ("Ni", "S")),
             ("c-CoLi", ("Li", "Co", "O"))]


def _features(compounds=COMPOUNDS, max_elements: int = 3, seed: int = 0,
              non_tm_spectra: bool = False) -> FeatureSet:
    """Real descriptors, smooth random spectra for the TMs (and optionally for non-TMs)."""
    rng = np.random.default_rng(seed)
    n = len(compounds)
    desc = np.zeros((n, max_elements, 11), np.float32)
    elem = np.zeros((n, max_elements), bool)
    tm = np.zeros((n, max_elements), bool)
    spec = np.zeros((n, max_elements, L), np.float32)
    smask = np.zeros((n, max_elements), bool)
    x = np.linspace(-10, 46, L)
    for i, (_, symbols) in enumerate(compounds):
        k = len(symbols)
        desc[i, :k] = descriptor_matrix(symbols, type_encoding="onehot", fill="median")
        elem[i, :k] = True
        for j, el in enumerate(symbols):
            tm[i, j] = el in {"Y", "Ti", "Fe", "Ni", "Co"}
            curve = 1 / (1 + np.exp(-x / rng.uniform(0.5, 2))) + 0.3 * np.sin(
                x / rng.uniform(2, 6))  # drawn for every element: the same TM spectra always
            if tm[i, j] or non_tm_spectra:
                spec[i, j] = (curve - curve.mean()) / curve.std()
                smask[i, j] = True
    return FeatureSet(material_ids=tuple(c[0] for c in compounds),
                      elements=tuple(c[1] for c in compounds), descriptors=desc,
                      element_mask=elem, tm_mask=tm, spectra=spec, spectrum_mask=smask)


def _model(n_outputs: int = 1, **kw) -> SpecFusionNet:
    torch.manual_seed(0)
    return SpecFusionNet(n_outputs=n_outputs, **{**SMALL, **kw}).eval()


# --------------------------------------------------------------------------------------------
# Grad-CAM
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_gradcam_maps_are_finite_normalised_and_shaped_like_the_input(n_outputs: int) -> None:
    feats = _features()
    results = interpret.grad_cam(_model(n_outputs), feats)
    assert [r.material_id for r in results] == list(feats.material_ids)
    for r, row in zip(results, range(len(feats)), strict=True):
        n_tm = int((feats.tm_mask[row] & feats.spectrum_mask[row]).sum())
        assert r.attribution.shape == r.raw_attribution.shape == r.spectra.shape == (n_tm, L)
        assert r.grid.shape == (L,) and r.grid[0] == -10 and r.grid[-1] == 46
        assert np.all(np.isfinite(r.attribution)) and np.all(r.raw_attribution >= 0)
        assert r.attribution.min() >= 0 and math.isclose(r.attribution.max(), 1.0)
        assert r.kind == ("regression" if n_outputs == 1 else "classification")
    assert results[0].elements == ("Y", "Ti")  # TMs only, in the compound's order


def test_gradcam_responds_to_the_input_and_follows_the_elements() -> None:
    feats = _features()
    model = _model(1)
    base = interpret.grad_cam(model, feats, [0])[0]
    changed = _features(seed=1)  # other spectra, same compounds
    other = interpret.grad_cam(model, changed, [0])[0]
    assert not np.allclose(base.raw_attribution, other.raw_attribution)
    # swapping Y and Ti on the padded axis swaps their maps (rows map to the right element)
    swapped = FeatureSet(
        material_ids=feats.material_ids[:1], elements=(("Ti", "Y", "O"),),
        descriptors=feats.descriptors[:1, [1, 0, 2]], element_mask=feats.element_mask[:1],
        tm_mask=feats.tm_mask[:1, [1, 0, 2]], spectra=feats.spectra[:1, [1, 0, 2]],
        spectrum_mask=feats.spectrum_mask[:1, [1, 0, 2]])
    again = interpret.grad_cam(model, swapped, [0])[0]
    assert again.elements == ("Ti", "Y")
    np.testing.assert_allclose(again.raw_attribution, base.raw_attribution[::-1], rtol=1e-4,
                               atol=1e-6)


def test_padding_and_unread_spectra_get_no_attribution() -> None:
    model = _model(2)
    tight = _features(max_elements=3)
    padded = _features(max_elements=6)
    with_non_tm = _features(max_elements=6, non_tm_spectra=True)
    a = interpret.grad_cam(model, tight)
    b = interpret.grad_cam(model, padded)
    c = interpret.grad_cam(model, with_non_tm)
    for x, y, z in zip(a, b, c, strict=True):
        assert x.elements == y.elements == z.elements  # non-TM spectra are not read
        np.testing.assert_allclose(x.raw_attribution, y.raw_attribution, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(x.raw_attribution, z.raw_attribution, rtol=1e-4, atol=1e-6)
    # an all-element model reads (and attributes) the non-TM spectra too
    everything = interpret.grad_cam(_model(2, all_element=True), with_non_tm, [0])[0]
    assert everything.elements == ("Y", "Ti", "O") and everything.attribution.shape == (3, L)


def test_batched_gradcam_equals_one_compound_at_a_time() -> None:
    feats, model = _features(), _model(3)
    batched = interpret.grad_cam(model, feats, batch_size=4)
    for i, r in enumerate(batched):
        single = interpret.grad_cam(model, feats, [i])[0]
        np.testing.assert_allclose(r.raw_attribution, single.raw_attribution, rtol=1e-4,
                                   atol=1e-6)
        assert r.target == single.target


def test_gradcam_refuses_what_it_cannot_attribute() -> None:
    feats = _features()
    with pytest.raises(interpret.gradcam.ConfigurationError, match="element-level"):
        interpret.grad_cam(_model(3, element_level=True), feats)
    with pytest.raises(interpret.gradcam.ConfigurationError, match="out of range"):
        interpret.grad_cam(_model(3), feats, target=5)


def test_region_integrals_and_shares() -> None:
    grid = np.linspace(-10, 46, L)
    ones = np.ones((2, L))
    integrals = interpret.region_attention(ones, grid)
    step = grid[1] - grid[0]
    widths = np.array([hi - lo for lo, hi in interpret.REGIONS.values()])
    assert integrals.shape == (2, 3)
    assert np.all(np.abs(integrals - widths) <= step + 1e-9)  # within one grid point
    assert math.isclose(integrals[0].sum(), L * step)  # every point counted once
    peak = np.where((grid >= -2) & (grid < 10), 1.0, 0.0)
    only_edge = interpret.region_attention(peak, grid)
    assert only_edge[0] == 0 and only_edge[2] == 0 and only_edge[1] > 0
    result = interpret.grad_cam(_model(1), _features(), [0])[0]
    table = result.regions()
    assert sorted(zip(table["element"], table["region"], strict=True)) == sorted(
        (el, region) for el in result.elements for region in interpret.REGIONS)
    np.testing.assert_allclose(table.groupby("element")["share_of_spectrum"].sum(), 1.0)
    assert math.isclose(table["share_of_compound"].sum(), 1.0)
    summary = interpret.region_summary(interpret.region_table([result]))
    assert list(summary["region"]) == list(interpret.REGIONS)
    assert "E0−10…E0−2 eV" in interpret.region_caption()


# --------------------------------------------------------------------------------------------
# Faithfulness
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_outputs", [1, 2])
def test_deletion_curve_shapes_and_end_points(n_outputs: int) -> None:
    feats = _features()
    fractions = (0.0, 0.1, 0.5, 1.0)
    curve = interpret.deletion_curve(_model(n_outputs), feats, fractions=fractions,
                                     n_random=3, seed=1)
    assert curve.attributed.shape == curve.random.shape == (len(feats), len(fractions))
    assert np.all(np.isfinite(curve.attributed)) and np.all(np.isfinite(curve.random))
    assert np.all(curve.attributed[:, 0] == 0) and np.all(curve.random[:, 0] == 0)
    np.testing.assert_allclose(curve.attributed[:, -1], curve.random[:, -1], atol=1e-6)
    assert np.any(curve.attributed[:, 1:-1] > 0)
    frame = curve.frame()
    assert list(frame["fraction"]) == list(fractions)
    areas = curve.areas()
    assert set(areas) == {"attributed", "random", "ratio", "share_attributed_larger"}
    again = interpret.deletion_curve(_model(n_outputs), feats, fractions=fractions,
                                     n_random=3, seed=1)
    np.testing.assert_array_equal(again.random, curve.random)  # seeded
    with pytest.raises(interpret.gradcam.ConfigurationError):
        interpret.deletion_curve(_model(1), feats, fractions=(0.5, 0.2))


# --------------------------------------------------------------------------------------------
# Ablations
# --------------------------------------------------------------------------------------------


def _inputs(feats: FeatureSet) -> dict[str, torch.Tensor]:
    return {"descriptors": torch.as_tensor(feats.descriptors),
            "element_mask": torch.as_tensor(feats.element_mask),
            "tm_mask": torch.as_tensor(feats.tm_mask),
            "spectra": torch.as_tensor(feats.spectra),
            "spectrum_mask": torch.as_tensor(feats.spectrum_mask)}


def test_every_ablation_keeps_the_parameter_count() -> None:
    n = count_parameters(_model(2))
    for abl in ABLATIONS.values():
        assert count_parameters(_model(2, **abl.model_kwargs)) == n, abl.name
    assert ABLATIONS[BASELINE].tag == "" and ABLATIONS["tm-Z"].tag == "ablation-tm-Z"


def test_the_ablations_are_the_full_model_two_modules_and_five_groups_per_scope() -> None:
    # the paper's Fig. 3b,c / S13 / S14: TM fusion, non-TM branch, and χ, r_atom, IE1–IE3, Z,
    # type masked in the TM and in the non-TM branch
    assert set(DESCRIPTOR_GROUPS) == {"electronegativity", "atomic_radius",
                                      "ionization_energies", "Z", "type"}
    assert next(iter(ABLATIONS)) == BASELINE  # the full model first
    assert set(ABLATIONS) == ({BASELINE, "no_tm_fusion", "no_non_tm"}
                              | {f"{scope}-{group}" for scope in ("tm", "non_tm")
                                 for group in DESCRIPTOR_GROUPS})
    for name, abl in ABLATIONS.items():
        assert abl.name == name
        if abl.component == "descriptor":
            assert name == f"{abl.scope}-{abl.group}"
            assert GROUP_LABELS[abl.group] in abl.label


def test_ablation_table_names_what_each_ablation_masks() -> None:
    table = interpret.ablation_table().set_index("ablation")
    assert list(table.index) == list(ABLATIONS)
    assert table.loc[BASELINE, "masked"] == "nothing (full model)"
    assert table.loc["no_tm_fusion", "masked"] == "use_tm_fusion=False"
    assert table.loc["no_non_tm", "masked"] == "use_non_tm=False"
    names = descriptor_columns("onehot")
    for name, abl in ABLATIONS.items():
        if abl.component != "descriptor":
            continue
        columns = [names[i] for i in descriptor_group_indices([abl.group])]
        assert table.loc[name, "masked"] == f"masked_{abl.scope}_descriptors={columns}"
        assert (table.loc[name, "scope"], table.loc[name, "group"]) == (abl.scope, abl.group)
    assert table.loc["tm-ionization_energies", "masked"].endswith("['ie1', 'ie2', 'ie3']")
    only = interpret.ablation_table([ABLATIONS["tm-Z"]])
    assert list(only["ablation"]) == ["tm-Z"]


@pytest.mark.parametrize("name", [n for n, a in ABLATIONS.items() if a.component == "descriptor"])
def test_descriptor_ablation_masks_exactly_its_columns_for_its_scope(name: str) -> None:
    abl = ABLATIONS[name]
    masked = set(descriptor_group_indices([abl.group]))
    feats = _features()
    x = _inputs(feats)
    model = _model(2, **abl.model_kwargs)
    ref = model(**x)
    tm = x["tm_mask"]
    non_tm = x["element_mask"] & ~tm
    for column in range(feats.n_descriptors):
        for scope, where in (("tm", tm), ("non_tm", non_tm)):
            bumped = dict(x, descriptors=x["descriptors"].clone())
            bumped["descriptors"][..., column] += 3.0 * where
            unchanged = torch.allclose(model(**bumped), ref, atol=1e-6)
            assert unchanged == (scope == abl.scope and column in masked), (scope, column)


def test_module_ablations_mask_their_inputs() -> None:
    x = _inputs(_features())
    no_fusion = _model(2, **ABLATIONS["no_tm_fusion"].model_kwargs)
    other = dict(x, spectra=torch.randn_like(x["spectra"]) * x["spectrum_mask"][..., None])
    torch.testing.assert_close(no_fusion(**other), no_fusion(**x))
    no_non_tm = _model(2, **ABLATIONS["no_non_tm"].model_kwargs)
    bumped = dict(x, descriptors=x["descriptors"].clone())
    bumped["descriptors"] += 2.0 * (x["element_mask"] & ~x["tm_mask"])[..., None]
    torch.testing.assert_close(no_non_tm(**bumped), no_non_tm(**x))
    full = _model(2)
    assert not torch.allclose(full(**bumped), full(**x))


def test_scoped_masks_are_rebuilt_from_hparams_not_stored_as_weights() -> None:
    model = _model(2)
    model.set_ablation(masked_tm_descriptors=[3, 4])
    assert model.hparams["masked_tm_descriptors"] == [3, 4]
    assert not any("tm_descriptor_keep" in k for k in model.state_dict())
    rebuilt = SpecFusionNet(**model.hparams)
    rebuilt.load_state_dict(model.state_dict())
    x = _inputs(_features())
    torch.testing.assert_close(rebuilt.eval()(**x), model(**x))
    old_style = {k: v for k, v in model.hparams.items() if "tm_descriptors" not in k}
    assert SpecFusionNet(**old_style).hparams["masked_non_tm_descriptors"] == []


def _study(deltas: dict[tuple[str, str], list[float]], tasks: tuple[str, ...],
           noise: dict[str, list[float]] | None = None) -> AblationStudy:
    """A study from chosen per-seed MAE / F1 changes (full model: MAE 1.0, F1 0.8), with an
    optional retraining-noise reference per task."""
    kinds = {"density": "regression", "band_gap": "regression", "is_magnetic": "classification"}
    rows = []
    n_seeds = len(next(iter(deltas.values())))
    for task in tasks:
        for seed in range(n_seeds):
            base = {"mae": 1.0, "f1_macro": 0.8, "accuracy": 0.9}
            rows.append({"task": task, "kind": kinds[task], "ablation": BASELINE,
                         "seed": seed, **base, "n_test": 10, "parameters": 100})
            names = [n for n in ABLATIONS if n != BASELINE]
            if noise and task in noise:
                names.append(NOISE)
            for name in names:
                d = (noise[task][seed] if name == NOISE
                     else deltas.get((task, name), [0.0] * n_seeds)[seed])
                metrics = ({"mae": 1.0 + d} if kinds[task] == "regression" else
                           {"f1_macro": 0.8 + d, "accuracy": 0.9 + d})
                rows.append({"task": task, "kind": kinds[task], "ablation": name,
                             "seed": seed, **{**base, **metrics}, "n_test": 10,
                             "parameters": 100})
    return AblationStudy(tasks, tuple(ABLATIONS.values()), pd.DataFrame(rows), {}, "test")


def test_summary_is_paired_mean_and_std_over_seeds() -> None:
    study = _study({("density", "tm-Z"): [0.2, 0.4], ("is_magnetic", "no_tm_fusion"):
                    [-0.1, -0.3]}, ("density", "is_magnetic"))
    summary = study.summary()
    z = summary[(summary["task"] == "density") & (summary["ablation"] == "tm-Z")].iloc[0]
    assert math.isclose(z["delta_mean"], 0.3) and math.isclose(z["delta_std"], math.sqrt(0.02))
    assert z["degradation_mean"] > 0 and z["n_seeds"] == 2 and z["resolved"]  # 0.3 > 2·0.1
    assert math.isnan(z["noise"]) and z["exceeds_noise"] is None
    with_noise = _study({("density", "tm-Z"): [0.2, 0.4], ("density", "tm-type"): [0.05, 0.1]},
                        ("density",), noise={"density": [-0.1, 0.2]}).summary()
    flags = with_noise.set_index("ablation")
    assert math.isclose(flags.loc["tm-Z", "noise"], 0.15)  # mean |Δ| of the two copies
    assert flags.loc["tm-Z", "exceeds_noise"] and not flags.loc["tm-type", "exceeds_noise"]
    assert "no_tm_fusion" in flags.index and NOISE not in flags.index
    f1 = summary[(summary["task"] == "is_magnetic") & (summary["ablation"] == "no_tm_fusion")
                 & (summary["metric"] == "f1_macro")].iloc[0]
    assert math.isclose(f1["delta_mean"], -0.2) and f1["degradation_mean"] > 0


def _runs_frame(rows: list[tuple]) -> pd.DataFrame:
    """(task, ablation, seed, metrics, parameters) tuples → an AblationStudy runs frame."""
    kinds = {"density": "regression", "is_magnetic": "classification"}
    return pd.DataFrame([{"task": t, "kind": kinds[t], "ablation": a, "seed": s, **m,
                          "n_test": 10, "parameters": p} for t, a, s, m, p in rows])


def test_deltas_are_ablated_minus_the_full_model_of_the_same_seed() -> None:
    runs = _runs_frame([
        ("density", BASELINE, 0, {"mae": 1.0}, 100),
        ("density", BASELINE, 1, {"mae": 2.0}, 100),
        ("density", "tm-Z", 0, {"mae": 1.5}, 100),
        ("density", "tm-Z", 1, {"mae": 1.8}, 100),  # better than its own full model
        ("density", "tm-Z", 2, {"mae": 9.0}, 100),  # no full model of seed 2: not paired
        ("density", NOISE, 0, {"mae": 0.9}, 100),
        ("is_magnetic", BASELINE, 0, {"f1_macro": 0.8, "accuracy": 0.9}, 100),
        ("is_magnetic", "no_tm_fusion", 0, {"f1_macro": 0.6, "accuracy": 0.95}, 100),
    ])
    study = AblationStudy(("density", "is_magnetic"), tuple(ABLATIONS.values()), runs, {},
                          "test")
    d = study.deltas().set_index(["task", "ablation", "seed", "metric"])
    assert BASELINE not in set(d.index.get_level_values("ablation"))
    assert ("density", "tm-Z", 2, "mae") not in d.index
    z0, z1 = d.loc[("density", "tm-Z", 0, "mae")], d.loc[("density", "tm-Z", 1, "mae")]
    assert (z0["full"], z0["ablated"]) == (1.0, 1.5) and (z1["full"], z1["ablated"]) == (2.0, 1.8)
    # MAE: Δ = ablated − full, degradation = Δ (positive = worse)
    assert z0["delta"] == pytest.approx(0.5) and z0["degradation"] == pytest.approx(0.5)
    assert z1["delta"] == pytest.approx(-0.2) and z1["degradation"] == pytest.approx(-0.2)
    # F1 / accuracy: Δ = ablated − full, degradation = −Δ (a lower score is worse)
    f1 = d.loc[("is_magnetic", "no_tm_fusion", 0, "f1_macro")]
    assert f1["delta"] == pytest.approx(-0.2) and f1["degradation"] == pytest.approx(0.2)
    acc = d.loc[("is_magnetic", "no_tm_fusion", 0, "accuracy")]
    assert acc["delta"] == pytest.approx(0.05) and acc["degradation"] == pytest.approx(-0.05)
    assert d.loc[("density", NOISE, 0, "mae"), "delta"] == pytest.approx(-0.1)
    summary = study.summary().set_index(["task", "ablation", "metric"])
    z = summary.loc[("density", "tm-Z", "mae")]
    assert z["n_seeds"] == 2 and z["delta_mean"] == pytest.approx(0.15)
    assert (z["full_mean"], z["ablated_mean"]) == pytest.approx((1.5, 1.65))
    assert z["noise"] == pytest.approx(0.1) and z["exceeds_noise"]  # 0.15 > 0.1
    assert summary.loc[("density", "tm-type", "mae"), "status"] == NOT_AVAILABLE  # not run


def test_parameter_counts_report_a_shared_count_or_flag_a_mismatch() -> None:
    same = _runs_frame([("density", BASELINE, 0, {"mae": 1.0}, 120),
                        ("density", "tm-Z", 0, {"mae": 1.1}, 120)])
    counts = AblationStudy(("density",), tuple(ABLATIONS.values()), same, {},
                           "t").parameter_counts().set_index("ablation")["parameters"]
    assert counts.to_dict() == {BASELINE: 120, "tm-Z": 120}
    differ = _runs_frame([("density", BASELINE, 0, {"mae": 1.0}, 120),
                          ("density", "tm-Z", 0, {"mae": 1.1}, 120),
                          ("density", "tm-Z", 1, {"mae": 1.1}, 119)])
    counts = AblationStudy(("density",), tuple(ABLATIONS.values()), differ, {},
                           "t").parameter_counts().set_index("ablation")["parameters"]
    assert counts.to_dict() == {BASELINE: 120, "tm-Z": -1}


def test_paper_comparison_verdicts_follow_the_numbers() -> None:
    deltas = {(t, "tm-Z"): [0.3, 0.5] for t in ("density", "band_gap")}
    deltas[("is_magnetic", "tm-Z")] = [-0.2, -0.3]  # F1 drops: worse
    deltas[("density", "tm-type")] = [0.6, 0.7]  # type largest for density
    deltas[("band_gap", "tm-ionization_energies")] = [0.2, 0.3]  # IE 2nd for band gap
    for t in ("density", "band_gap"):
        deltas[(t, "no_tm_fusion")] = [0.1, 0.2]
        deltas[(t, "no_non_tm")] = [0.1, 0.2]
    deltas[("is_magnetic", "no_tm_fusion")] = [-0.1, -0.2]
    deltas[("is_magnetic", "no_non_tm")] = [-0.1, -0.2]
    table = interpret.paper_comparison(
        _study(deltas, ("density", "band_gap", "is_magnetic")).summary())
    assert list(zip(table["statement"], table["source"], strict=True)) == list(
        PAPER_STATEMENTS.values())  # every paper statement, once, in order
    assert table["verdict"].str.startswith("agrees").all(), table
    assert table["ours"].str.contains("(2 seeds)", regex=False).all()
    # the reverse: Z helps nothing, fusion masking improves density
    worse = {("density", "no_tm_fusion"): [-0.2, -0.3]}
    reverse = interpret.paper_comparison(_study(worse, ("density",)).summary())
    assert reverse["verdict"].str.startswith("does not agree").sum() >= 2
    one_seed = interpret.paper_comparison(_study({("density", "tm-Z"): [0.3]},
                                                 ("density",)).summary())
    assert one_seed["verdict"].str.contains("1 seed").any()


def test_run_ablation_on_the_fixture_trains_resumes_and_reports(fixture_snapshot,
                                                                tmp_path) -> None:
    kwargs = {k: v for k, v in SMALL.items()}
    names = ["no_tm_fusion", "tm-Z"]
    study = interpret.run_ablation(fixture_snapshot, ["density", "band_gap"], "smoke",
                                   ablations=names, model_kwargs=kwargs,
                                   checkpoint_dir=tmp_path)
    assert "band_gap" in study.not_available  # the fixture has no band-gap labels
    assert list(study.runs["ablation"]) == [BASELINE, *names, NOISE]
    noise_run = study.runs[study.runs["ablation"] == NOISE].iloc[0]
    assert noise_run["seed"] == 0 and noise_run["train_seed"] == NOISE_SEED_OFFSET
    assert study.runs["parameters"].nunique() == 1 and not study.runs["resumed"].any()
    assert (tmp_path / "density-ablation-tm-Z-seed0.pt").is_file()
    summary = study.summary()
    trained = summary[summary["status"] == "trained"]
    assert set(trained["ablation"]) == set(names) and trained["delta_mean"].notna().all()
    assert trained["noise"].notna().all() and trained["exceeds_noise"].notna().all()
    assert (summary.loc[summary["task"] == "band_gap", "status"] != "trained").all()
    again = interpret.run_ablation(fixture_snapshot, ["density"], "smoke", ablations=names,
                                   model_kwargs=kwargs, checkpoint_dir=tmp_path)
    assert again.runs["resumed"].all()
    pd.testing.assert_frame_equal(again.deltas(), study.deltas())
    with pytest.raises(interpret.gradcam.ConfigurationError, match="unknown ablation"):
        interpret.run_ablation(fixture_snapshot, ["density"], "smoke", ablations=["nope"])
    with pytest.raises(interpret.gradcam.ConfigurationError, match="element level"):
        interpret.run_ablation(fixture_snapshot, ["oxidation_state"], "smoke")


def test_ablation_profile_lowers_the_material_cap_only() -> None:
    from specfusion_lib.core.profiles import Profile, get_profile
    from specfusion_lib.interpret.ablation import ablation_profile

    quick = get_profile("quick")
    assert quick.ablation_max_materials is not None
    lowered = ablation_profile(quick)
    assert lowered.max_materials == quick.ablation_max_materials
    assert (lowered.name, lowered.max_epochs, lowered.seeds) == (quick.name, quick.max_epochs,
                                                                quick.seeds)
    small = Profile("s", seeds=(0,), max_epochs=1, patience=1, max_materials=10,
                    ablation_max_materials=300)
    assert ablation_profile(small) is small  # never raised above max_materials
    uncapped = Profile("u", seeds=(0,), max_epochs=1, patience=1, max_materials=None,
                       ablation_max_materials=5)
    assert ablation_profile(uncapped).max_materials == 5
    assert ablation_profile(get_profile("paper")) is get_profile("paper")


# --------------------------------------------------------------------------------------------
# Examples and figures
# --------------------------------------------------------------------------------------------


def test_examples_found_by_reduced_formula_or_replaced_with_a_note(fixture_snapshot) -> None:
    feats = _features()
    materials = pd.DataFrame({"material_id": ["c-YTi", "c-Fe", "c-NiS", "c-CoLi", "other"],
                              "formula": ["Y4Ti2O10", "FeO", "NiS", "LiCoO2", "Y2Ti2O7"]})
    snapshot = SimpleNamespace(materials=materials)
    choices = interpret.choose_examples(snapshot, feats, preferred_ids=["c-NiS"])
    first, second, third = choices
    assert first.found and first.material_id == "c-YTi" and first.wanted == "Y2TiO5"
    assert not second.found and "no usable TM spectrum" in second.note
    assert second.material_id == "c-NiS"  # preferred (test) compound first
    assert not third.found and "not in this snapshot" in third.note
    assert len({c.material_id for c in choices}) == 3
    assert "in place of YTiO3" in third.title()
    table = interpret.examples_table(choices)
    assert list(table["found"]) == [True, False, False]


def test_held_out_ids_prefer_compounds_every_model_held_out() -> None:
    def run(test_ids):
        result = SimpleNamespace(split={"test": test_ids})
        return SimpleNamespace(summary=SimpleNamespace(results=[result]))

    missing = SimpleNamespace(summary=None)
    assert interpret.held_out_ids({"a": run(["x", "y"]), "b": run(["y", "z"]),
                                   "c": missing}) == ["y"]
    assert interpret.held_out_ids({"a": run(["x"]), "b": run(["z"])}) == ["x", "z"]
    assert interpret.held_out_ids({"c": missing}) == []


def test_figures_draw_results_and_messages() -> None:
    feats, model = _features(), _model(1)
    result = interpret.grad_cam(model, feats, [0])[0]
    fig = interpret_plots.plot_gradcam({"band_gap": result, "density": "not available"},
                                          "test")
    assert len(fig.axes) >= 3
    curve = interpret.deletion_curve(model, feats, fractions=(0.0, 0.5, 1.0), n_random=1)
    figs = [fig, interpret_plots.plot_deletion_curves({"band_gap": curve, "density": "x"}),
            interpret_plots.plot_region_summary(interpret.region_summary(
                interpret.region_table([result]))),
            interpret_plots.plot_structure(None)]
    summary = _study({("density", "tm-Z"): [0.3, 0.2]}, ("density", "is_magnetic")).summary()
    figs += [interpret_plots.plot_fusion_ablation(summary),
             interpret_plots.plot_descriptor_ablation(summary, "regression", ["tm"]),
             interpret_plots.plot_descriptor_ablation(summary, "classification")]
    for f in figs:
        plt.close(f)


def test_capped_ablation_baseline_never_replaces_notebook_02s_model(fixture_snapshot,
                                                                   tmp_path) -> None:
    from specfusion_lib.core.profiles import Profile
    from specfusion_lib.training.checkpoints import load

    full = Profile("t", seeds=(0,), max_epochs=1, patience=1, max_materials=None,
                   ablation_max_materials=3)
    same = Profile("t", seeds=(0,), max_epochs=1, patience=1, max_materials=None)
    kwargs = dict(SMALL)
    interpret.run_ablation(fixture_snapshot, ["density"], same, ablations=[],
                           model_kwargs=kwargs, checkpoint_dir=tmp_path, noise_reference=False)
    untagged = tmp_path / "density-seed0.pt"
    assert untagged.is_file()  # uncapped: the full model is notebook 02's run
    before = load(untagged)[1]["profile"]
    interpret.run_ablation(fixture_snapshot, ["density"], full, ablations=[],
                           model_kwargs=kwargs, checkpoint_dir=tmp_path, noise_reference=False)
    assert (tmp_path / "density-ablation-baseline-seed0.pt").is_file()
    assert load(untagged)[1]["profile"] == before  # still the uncapped model
