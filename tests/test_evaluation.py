"""Tables and figures of notebooks 02–04 (paper value and baseline next to every metric)."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pytest

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.plotting import properties as pm
from specfusion_lib.properties import runs as ev
from specfusion_lib.properties.features import get_task_spec

TASKS = ("band_gap", "is_magnetic", "crystal_system", "density")

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
    return ev.run_tasks(fixture_snapshot, TASKS, "smoke", features=features[0], **SMALL)


def test_paper_reference_table() -> None:
    table = ev.paper_reference_table()
    assert {"task", "metric", "paper_value", "source"} <= set(table.columns)
    row = table[(table["task"] == "density") & (table["metric"] == "mae")].iloc[0]
    assert row["paper_value"] == "< 0.60 g/cm³" and "Fig. 2g" in row["source"]
    assert (table["paper_value"] == "0.05 eV").any()


def test_metrics_table_shows_paper_and_baseline(runs) -> None:
    table = ev.metrics_table(runs)
    for col in ("ours", "ours_mean", "baseline", "baseline_value", "paper_value"):
        assert col in table.columns
    gap = table[table["task"] == "band_gap"]
    assert set(gap["status"]) == {ev.NOT_AVAILABLE}  # the fixture has no band gaps
    assert gap["ours_mean"].isna().all()
    assert (gap[gap["metric"] == "mae"]["paper_value"] == "< 0.71 eV").all()
    dens = table[(table["task"] == "density") & (table["metric"] == "mae")].iloc[0]
    assert dens["status"] == "trained"
    assert math.isfinite(dens["ours_mean"]) and math.isfinite(dens["baseline_value"])
    assert dens["baseline"] == "mean of the training part"
    acc = table[(table["task"] == "crystal_system") & (table["metric"] == "accuracy")].iloc[0]
    assert acc["baseline"] == "majority class of the training part"
    assert acc["paper_value"].startswith("0.48")


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
