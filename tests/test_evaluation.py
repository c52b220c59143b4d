"""Tables and figures of notebooks 02–04 (paper value and baseline next to every metric)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from specfusion_lib.core import paper
from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.plotting import properties as pm
from specfusion_lib.properties import runs as ev
from specfusion_lib.properties.features import get_task_spec

TASKS = ("band_gap", "is_magnetic", "crystal_system", "density")
#: Two seeds, so that the tables' mean ± std over seeds is exercised.
SEEDS = (0, 1)

#: A small network and one epoch: the tests check plumbing, not accuracy.
SMALL = {"model_kwargs": {"d_model": 32, "conv_channels": (8, 16), "element_hidden": 16,
                          "fusion_hidden": 32, "ffn_dim": 32, "head_hidden": 16,
                          "n_attention_layers": 1},
         "max_epochs": 1}


@pytest.fixture(scope="module")
def features(fixture_snapshot):
    # every fixture compound, so that the tables below have enough labelled materials
    return ev.paired_features(fixture_snapshot, complete_only=False)


def test_paired_features_keep_compounds_with_every_element_spectrum(fixture_snapshot) -> None:
    tm, everything = ev.paired_features(fixture_snapshot)
    assert list(tm.material_ids) == list(everything.material_ids) and len(tm.material_ids) > 0
    assert (everything.spectrum_mask == everything.element_mask).all()
    loose = ev.paired_features(fixture_snapshot, complete_only=False)[1]
    assert len(loose.material_ids) > len(everything.material_ids)
    assert not (loose.spectrum_mask == loose.element_mask).all()


@pytest.fixture(scope="module")
def runs(fixture_snapshot, features):
    return ev.run_tasks(fixture_snapshot, TASKS, "smoke", features=features[0], seeds=SEEDS,
                        **SMALL)


def test_paper_reference_table_lists_every_paper_value_with_its_source() -> None:
    table = ev.paper_reference_table()
    keyed = table.set_index(["task", "metric"])
    assert not keyed.index.duplicated().any()
    for (task, metric), value in paper.PROPERTY_VALUES.items():
        row = keyed.loc[(task, metric)]
        assert row["paper_value"] == value.text, (task, metric)
        assert row["source"] == value.source, (task, metric)
        assert row["bound"] == (value.bound or "value"), (task, metric)
    # restricted to one task: that task's paper values only (plus the Fig. 2h comparisons)
    only = ev.paper_reference_table(["density"])
    per_task = only[only["task"].isin({t for t, _ in paper.PROPERTY_VALUES})]
    assert set(per_task["task"]) == {"density"}
    assert set(per_task["metric"]) == {m for t, m in paper.PROPERTY_VALUES if t == "density"}
    # the Fig. 2h comparisons (all-element vs TM-only) are listed with their own values
    fig2h = table[table["task"].str.contains("all-element vs TM-only")]
    assert sorted(zip(fig2h["paper_value"], fig2h["source"], strict=True)) == sorted(
        (v.text, v.source) for v in (paper.FIG2H_BAND_GAP_MAE_DIFFERENCE,
                                     paper.FIG2H_F1_DIFFERENCE))


def _row(table, task: str, metric: str):
    rows = table[(table["task"] == task) & (table["metric"] == metric)]
    assert len(rows) == 1, (task, metric, len(rows))
    return rows.iloc[0]


def test_metrics_table_puts_the_paper_value_next_to_ours_for_the_same_task_and_metric(
        runs) -> None:
    table = ev.metrics_table(runs)
    expected = {(t, m) for t, run in runs.items()
                for m in (("accuracy", "f1_macro") if run.spec.kind == "classification"
                          else ("mae", "r2"))}
    assert set(zip(table["task"], table["metric"], strict=True)) == expected
    with_paper = 0
    for row in table.itertuples(index=False):
        value = paper.PROPERTY_VALUES.get((row.task, row.metric))
        assert row.paper_value == (value.text if value else "—"), (row.task, row.metric)
        assert row.paper_source == (value.source if value else ""), (row.task, row.metric)
        with_paper += value is not None
    assert 0 < with_paper < len(table)  # r2 rows have no paper value: both cases are seen


def test_task_absent_from_the_snapshot_is_reported_not_available(runs) -> None:
    table = ev.metrics_table(runs)
    for task in ("band_gap", "is_magnetic"):  # the fixture has neither label
        assert not runs[task].available and runs[task].reason
        rows = table[table["task"] == task]
        assert set(rows["status"]) == {ev.NOT_AVAILABLE}
        assert set(rows["ours"]) == {ev.NOT_AVAILABLE}
        assert rows["ours_mean"].isna().all() and rows["baseline_value"].isna().all()
        assert (rows["seeds"] == 0).all() and (rows["n_test"] == 0).all()
    # the paper's value is still shown next to "not available"
    gap = _row(table, "band_gap", "mae")
    assert gap["paper_value"] == paper.PROPERTY_VALUES[("band_gap", "mae")].text
    assert set(table.loc[table["task"] == "density", "status"]) == {"trained"}


@pytest.mark.parametrize("task, metric", [("density", "mae"), ("density", "r2"),
                                          ("crystal_system", "accuracy"),
                                          ("crystal_system", "f1_macro")])
def test_metrics_table_mean_and_std_come_from_the_per_seed_runs(runs, task: str,
                                                                 metric: str) -> None:
    results = runs[task].summary.results
    assert [r.seed for r in results] == list(SEEDS)
    values = np.array([r.metrics[metric] for r in results], dtype=float)
    row = _row(ev.metrics_table(runs), task, metric)
    assert row["seeds"] == len(SEEDS)
    assert row["ours_mean"] == pytest.approx(np.nanmean(values), nan_ok=True)
    if np.isfinite(values).all():
        assert row["ours_std"] == pytest.approx(np.std(values, ddof=1))
        assert row["ours"] == f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
    base = [r.baseline[metric] for r in results]
    assert row["baseline_value"] == pytest.approx(np.nanmean(np.array(base, dtype=float)),
                                                  nan_ok=True)
    assert row["n_test"] == sum(len(r.split["test"]) for r in results)
    assert ("majority" if runs[task].spec.kind == "classification" else "mean") in \
        row["baseline"]


def test_trivial_baseline_is_recomputed_from_each_recorded_split(fixture_snapshot,
                                                                 runs) -> None:
    materials = fixture_snapshot.materials.set_index("material_id")
    for r in runs["density"].summary.results:
        y = materials["density"].astype(float)
        train, test = y[r.split["train"]], y[r.split["test"]]
        assert r.baseline["mae"] == pytest.approx(float(np.mean(np.abs(test - train.mean()))),
                                                  rel=1e-5)
    for r in runs["crystal_system"].summary.results:
        labels = materials["crystal_system"]
        counts = labels[r.split["train"]].value_counts()
        top = counts.max()
        majority = next(c for c in r.class_names if counts.get(c, 0) == top)  # ties: first
        accuracy = float(np.mean(labels[r.split["test"]] == majority))
        assert r.baseline["accuracy"] == pytest.approx(accuracy)


def test_confusion_and_parity(runs) -> None:
    matrix = ev.confusion_matrix(runs["crystal_system"])
    summary = runs["crystal_system"].summary
    assert int(matrix.to_numpy().sum()) == sum(r.metrics["n_test"] for r in summary.results)
    assert list(matrix.index) == list(matrix.columns)
    assert ev.confusion_matrix(runs["is_magnetic"]) is None
    with pytest.raises(ConfigurationError):
        ev.confusion_matrix(runs["density"])
    with pytest.raises(ConfigurationError):
        ev.parity_frame(runs["crystal_system"])
    assert ev.parity_frame(runs["band_gap"]).empty
    assert not ev.parity_frame(runs["density"]).empty


def test_partial_vs_all(fixture_snapshot, features, runs) -> None:
    tm, every = features
    assert tm.material_ids == every.material_ids
    all_runs = ev.run_tasks(fixture_snapshot, ["density", "band_gap"], "smoke",
                            features=every, all_element=True, **SMALL)
    table = ev.partial_vs_all_table({t: runs[t] for t in ("density", "band_gap")}, all_runs)
    dens = table.set_index("task").loc["density"]
    assert dens["difference"] == pytest.approx(dens["all_element"] - dens["tm_only"])
    assert table.set_index("task").loc["band_gap", "status"] == ev.NOT_AVAILABLE
    plt.close(pm.plot_partial_vs_all(table))


def test_per_element_accuracy(fixture_snapshot, features) -> None:
    runs = ev.run_tasks(fixture_snapshot, ev.ELEMENT_TASKS, "smoke", features=features[0],
                        **SMALL)
    tables = {t: ev.per_element_accuracy(fixture_snapshot, r, features[0])
              for t, r in runs.items()}
    table = ev.per_element_table(tables)
    assert {"element", "accuracy", "baseline_accuracy", "n_test"} <= set(table.columns)
    assert table["accuracy"].between(0, 1).all()
    with pytest.raises(ConfigurationError):
        ev.per_element_accuracy(fixture_snapshot,
                                ev.TaskRun("density", get_task_spec("density")))
    plt.close(pm.plot_per_element_accuracy(tables))


def test_figures_draw_not_available_panels(runs) -> None:
    table = ev.metrics_table(runs)
    figs = [
        pm.plot_classification_metrics(table),
        pm.plot_confusion_matrices({t: ev.confusion_matrix(runs[t])
                                    for t in ("is_magnetic", "crystal_system")}),
        pm.plot_parity(ev.parity_frame(runs["band_gap"]), "Band gap", "eV",
                       table[table["task"] == "band_gap"], "< 0.71 eV"),
        pm.plot_parity(ev.parity_frame(runs["density"]), "Density", "g/cm³",
                       table[table["task"] == "density"], "< 0.60 g/cm³"),
    ]
    texts = [t.get_text() for t in figs[2].axes[0].texts]
    assert any(ev.NOT_AVAILABLE in t for t in texts)
    for fig in figs:
        plt.close(fig)


def test_split_comparison_puts_random_beside_family_for_every_metric():
    import pandas as pd

    def table(values):
        return pd.DataFrame([{"task": t, "metric": m, "title": t, "ours_mean": v,
                              "baseline_value": 0.5, "n_test": 10, "paper_value": "0.9",
                              "unit": ""} for (t, m), v in values.items()])

    family = table({("is_metal", "accuracy"): 0.70, ("density", "mae"): 0.60})
    random = table({("is_metal", "accuracy"): 0.85, ("density", "mae"): 0.40})
    out = ev.split_comparison_table(family, random).set_index(["task", "metric"])
    assert out.loc[("is_metal", "accuracy"), "random_minus_family"] == pytest.approx(0.15)
    assert out.loc[("density", "mae"), "random_minus_family"] == pytest.approx(-0.20)
    assert out.loc[("density", "mae"), "family"] == 0.60
    assert len(out) == 2
