"""Materials Project source: conversion, selection, retries, resume (no network).

The MP service is not reachable from the test machines. Documents are built locally with the
emmet-core models the server uses (``SummaryDoc``, ``XASDoc``), and requests go through the
real mp-api ``SummaryRester.search`` / ``XASRester.search`` (so argument names and query
translation are mp-api's own) down to ``BaseRester._search``, which a fake server replaces.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import requests
from emmet.core.summary import SummaryDoc
from emmet.core.xas import XASDoc
from mp_api.client.core import BaseRester, MPRestError
from mp_api.client.routes.materials.summary import SummaryRester
from mp_api.client.routes.materials.xas import XASRester
from pymatgen.analysis.xas.spectrum import XAS
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import (
    ConfigurationError,
    DataSourceError,
    MissingAPIKeyError,
    SnapshotError,
)
from specfusion_lib.data import mp
from specfusion_lib.data.snapshot import LABEL_FIELDS, load_snapshot

# ----------------------------------------------------------------------------- documents

EDGE_ENERGY = {"Mn": 6539.0, "Ni": 8333.0, "Co": 7709.0, "Fe": 7112.0, "Cu": 8979.0,
               "O": 543.0, "Cl": 2822.0, "Ti": 4966.0}


FCC = np.array([[0, 0, 0], [0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]])


def _rocksalt(cation: str, anion: str = "O", a: float = 4.3) -> Structure:
    """Conventional rock-salt cell (``Structure.from_spacegroup`` costs ~1 s per call)."""
    return Structure(Lattice.cubic(a), [cation] * 4 + [anion] * 4,
                     np.vstack([FCC, FCC + 0.5]) % 1.0)


def _summary(material_id: str, structure: Structure, **labels: Any) -> SummaryDoc:
    return SummaryDoc.from_structure(meta_structure=structure, material_id=material_id,
                                     deprecated=False, **labels)


def _xas(task_id: str, structure: Structure, element: str, edge: str = "K",
         spectrum_type: str = "XANES", n: int = 100) -> XASDoc:
    e0 = EDGE_ENERGY[element]
    x = np.linspace(e0 - 20.0, e0 + 50.0, n)
    y = 0.05 + 1.0 / (1.0 + np.exp(-(x - e0))) + 0.01 * np.sin(x)
    spectrum = XAS(x, y, structure, element, edge=edge, spectrum_type=spectrum_type)
    return XASDoc.from_spectrum(spectrum, task_id=task_id, last_updated="2025-01-01")


def _mno() -> Structure:
    return _rocksalt("Mn", a=4.445)


SIX = Structure(Lattice.cubic(7.0), ["Li", "Mn", "Fe", "O", "F", "Cl"],
                [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5], [0.5, 0.5, 0],
                 [0.5, 0.5, 0.5]])
XEMNO = Structure(Lattice.cubic(4.0), ["Xe", "Mn", "O", "O", "O"],
                  [[0, 0, 0], [0.5, 0.5, 0.5], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])

#: (material id in the summary, structure, labels, [(XAS task id, element, edge, type)])
MATERIALS: list[tuple[str, Structure, dict[str, Any], list[tuple[str, str, str, str]]]] = [
    ("mp-19006", _mno(), dict(band_gap=0.9, is_gap_direct=False, is_metal=False,
                              is_magnetic=True, ordering="AFM",
                              formation_energy_per_atom=-1.98, efermi=3.1),
     [("mp-19006", "Mn", "K", "XANES"), ("mp-19006", "O", "K", "XANES"),
      ("mp-19006", "Mn", "L3", "XANES"), ("mp-19006", "Mn", "K", "EXAFS")]),
    ("mp-19009", _rocksalt("Ni", a=4.177), dict(band_gap=2.3, ordering="Unknown"),
     [("mp-19009", "Ni", "K", "XANES")]),
    ("mp-22408", _rocksalt("Co", a=4.26), dict(is_metal=False),
     [("mp-22408", "Co", "K", "XANES")]),
    ("mp-18905", _rocksalt("Fe", a=4.33), dict(is_magnetic=True, ordering="FM"),
     [("mp-18905", "Fe", "K", "XANES")]),
    # new-style id: the summary spells it as an AlphaID, the XAS collection as mp-<int>
    ("mp-aaaahilze", _rocksalt("Cu", a=4.25), dict(band_gap=0.0, is_metal=True),
     [("mp-3347530", "Cu", "K", "XANES")]),
    # only a non-TM spectrum: dropped when TM K-edge XANES is required
    ("mp-2664", _rocksalt("Ti", a=4.18), dict(), [("mp-2664", "O", "K", "XANES")]),
    # outside the selection (client-side filter)
    ("mp-900001", SIX, dict(), [("mp-900001", "Mn", "K", "XANES")]),
    ("mp-22862", _rocksalt("Na", "Cl", a=5.64), dict(), [("mp-22862", "Cl", "K", "XANES")]),
    ("mp-900002", XEMNO, dict(), [("mp-900002", "Mn", "K", "XANES")]),
]
KEPT = ["mp-18905", "mp-19006", "mp-19009", "mp-22408", "mp-aaaahilze"]
DROPPED_SELECTION = {"mp-900001", "mp-22862", "mp-900002"}


@pytest.fixture(scope="module")
def docs() -> tuple[list[SummaryDoc], list[XASDoc]]:
    summaries, spectra = [], []
    for mid, structure, labels, xas in MATERIALS:
        summaries.append(_summary(mid, structure, **labels))
        spectra += [_xas(tid, structure, el, edge, kind) for tid, el, edge, kind in xas]
    return summaries, spectra


# ----------------------------------------------------------------------------- fake server


class FakeServer:
    """Stands in for the MP REST API below mp-api's ``BaseRester._search``.

    It honours ``material_ids`` / ``task_ids`` (the paging of the fetch) and ignores every
    other filter, as if the server could not apply them, so the client-side selection is
    exercised. ``hook(kind, ids, call_number)`` may raise to simulate failures.
    """

    def __init__(self, summaries: list[SummaryDoc], spectra: list[XASDoc],
                 hook: Callable[[str, list[str], int], None] | None = None) -> None:
        self.summaries = {mp._id_key(str(d.material_id)): d for d in summaries}
        self.spectra = spectra
        self.hook = hook
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def search(self, rester: BaseRester, **params: Any) -> list[Any]:
        kind = "xas" if isinstance(rester, XASRester) else "summary"
        ids = params.get("material_ids") or params.get("task_ids")
        if kind == "summary" and ids is None:
            kind = "list"
        id_list = ids.split(",") if ids else []
        self.calls.append((kind, params))
        if self.hook is not None:
            self.hook(kind, id_list, len(self.calls))
        keys = {mp._id_key(i) for i in id_list}
        if kind == "list":
            return [SimpleNamespace(material_id=d.material_id) for d in self.summaries.values()]
        if kind == "summary":
            return [d for k, d in self.summaries.items() if k in keys]
        return [d for d in self.spectra if mp._id_key(d.task_id.string) in keys]

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.calls if k == kind)

    def requested_ids(self, kind: str) -> list[str]:
        field = "task_ids" if kind == "xas" else "material_ids"
        return [i for k, p in self.calls if k == kind for i in p[field].split(",")]


def _client(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    """An MPRester look-alike built from the real mp-api route classes (no heartbeat)."""
    monkeypatch.setattr(BaseRester, "_search",
                        lambda self, **params: server.search(self, **params))
    summary = SummaryRester.__new__(SummaryRester)
    xas = XASRester.__new__(XASRester)
    return SimpleNamespace(materials=SimpleNamespace(summary=summary, xas=xas),
                           db_version="2025.09.25")


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MP_API_KEY", raising=False)


def _fetch(tmp_path: Path, client: Any, **kwargs: Any) -> Path:
    options = dict(chunk_size=2, backoff_s=0.0, progress=False, site_labels=False)
    options.update(kwargs)
    return mp.fetch_mp_snapshot(tmp_path / "mp", client=client, **options)


# ----------------------------------------------------------------------------- conversion


def test_summary_doc_to_record(docs: tuple[list[SummaryDoc], list[XASDoc]]) -> None:
    record = mp.summary_doc_to_record(docs[0][0])
    assert record.material_id == "mp-19006"
    assert record.structure.composition.reduced_formula == "MnO"
    assert set(record.labels) == set(LABEL_FIELDS)
    assert record.labels["crystal_system"] == "cubic"
    assert record.labels["ordering"] == "AFM"
    assert record.labels["band_gap"] == pytest.approx(0.9)
    assert record.labels["is_gap_direct"] is False and record.labels["is_magnetic"] is True
    assert record.labels["efermi"] == pytest.approx(3.1)
    assert record.labels["density"] == pytest.approx(_mno().density)
    assert record.sites is None
    nio = mp.summary_doc_to_record(docs[0][1])
    assert nio.labels["ordering"] is None  # MP "Unknown" is absent, not a class
    assert nio.labels["efermi"] is None and nio.labels["is_metal"] is None


def test_summary_partial_and_dict_documents() -> None:
    partial = SummaryDoc.model_construct(material_id="mp-1", structure=_mno(),
                                         band_gap=float("nan"), ordering="FiM")
    record = mp.summary_doc_to_record(partial)
    assert record.labels["band_gap"] is None  # non-finite → absent
    assert record.labels["crystal_system"] is None  # symmetry not returned
    assert record.labels["ordering"] == "FiM"
    as_dict = {"material_id": "mp-2", "structure": _mno().as_dict(), "is_metal": True,
               "symmetry": {"crystal_system": "Hexagonal"}, "ordering": "NM"}
    record = mp.summary_doc_to_record(as_dict)
    assert record.labels["crystal_system"] == "hexagonal"
    assert record.labels["is_metal"] is True and record.labels["ordering"] == "NM"
    with pytest.raises(DataSourceError, match="mp-3.*no structure"):
        mp.summary_doc_to_record({"material_id": "mp-3"})


def test_xas_doc_to_record() -> None:
    doc = _xas("mp-19006", _mno(), "Mn")
    assert doc.task_id.string == "mp-19006"
    record = mp.xas_doc_to_record(doc)
    assert (record.material_id, record.element, record.edge) == ("mp-19006", "Mn", "K")
    assert record.source == "mp:xas" and record.kind == "XANES"
    np.testing.assert_array_equal(record.energy, np.asarray(doc.spectrum.x))
    np.testing.assert_array_equal(record.mu, np.asarray(doc.spectrum.y))
    assert mp.xas_doc_to_record(doc, material_id="mp-x").material_id == "mp-x"


def test_xas_dict_document_is_sorted_and_checked() -> None:
    doc = {"task_id": "mp-5", "absorbing_element": "Fe", "edge": "K",
           "spectrum_type": "XANES",
           "spectrum": {"x": [7110.0, 7100.0, 7120.0, 7110.0], "y": [0.5, 0.1, 1.0, 0.7]}}
    record = mp.xas_doc_to_record(doc)
    np.testing.assert_allclose(record.energy, [7100.0, 7110.0, 7120.0])
    np.testing.assert_allclose(record.mu, [0.1, 0.6, 1.0])
    doc["spectrum"] = {"x": [1.0, 2.0], "y": [0.0, float("nan")]}
    with pytest.raises(DataSourceError, match="mp-5 Fe K.*NaN"):
        mp.xas_doc_to_record(doc)


def test_in_selection() -> None:
    assert mp.in_selection(["Mn", "O"])
    assert not mp.in_selection(["Li", "Mn", "Fe", "O", "F", "Cl"])  # 6 elements
    assert not mp.in_selection(["Na", "Cl"])  # no transition metal
    assert not mp.in_selection(["Xe", "Mn", "O"])  # noble gas
    assert not mp.in_selection(["Mn"])  # one element
    assert not mp.in_selection(["W", "O"])  # 5d metals are not TMs in the paper's sense
    assert mp.in_selection(["Na", "Cl"], require_transition_metal=False)
    assert mp.in_selection(["Xe", "Mn", "O"], exclude_noble_gases=False)
    assert mp.in_selection(["Li", "Mn", "Fe", "O", "F", "Cl"], elements_range=(2, 6))


# ----------------------------------------------------------------------------- fetching


def test_missing_api_key(tmp_path: Path) -> None:
    with pytest.raises(MissingAPIKeyError) as info:
        mp.fetch_mp_snapshot(tmp_path / "mp", progress=False)
    message = str(info.value)
    assert "https://next-gen.materialsproject.org/api" in message
    assert "export MP_API_KEY=" in message and "--api-key" in message
    assert not (tmp_path / "mp.partial").exists()


def test_default_client_is_mprester_with_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             docs: tuple[list[SummaryDoc], list[XASDoc]]
                                             ) -> None:
    import mp_api.client

    server = FakeServer(*docs)
    fake = _client(server, monkeypatch)
    made: list[str] = []

    class FakeRester:
        def __init__(self, api_key: str, **options: Any) -> None:
            assert options.get("mute_progress_bars") is True  # our tqdm bars instead
            made.append(api_key)
            self.materials, self.db_version = fake.materials, "2025.09.25"

        def __enter__(self) -> FakeRester:
            return self

        def __exit__(self, *exc: object) -> None:
            made.append("closed")

    monkeypatch.setattr(mp_api.client, "MPRester", FakeRester)
    monkeypatch.setenv("MP_API_KEY", "k" * 32)
    path = _fetch(tmp_path, None)
    assert made == ["k" * 32, "closed"]
    assert load_snapshot(path).manifest["mp_database_version"] == "2025.09.25"


def test_fetch_selection_and_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      docs: tuple[list[SummaryDoc], list[XASDoc]]) -> None:
    server = FakeServer(*docs)
    path = _fetch(tmp_path, _client(server, monkeypatch))

    # server-side selection, as translated by mp-api: one id query per transition metal
    lists = [p for k, p in server.calls if k == "list"]
    assert sorted(p["elements"] for p in lists) == sorted(mp.TRANSITION_METALS)
    for params in lists:
        assert (params["nelements_min"], params["nelements_max"]) == (2, 5)
        assert "Xe" in params["exclude_elements"].split(",")
        assert params["has_props"] == "xas" and params["deprecated"] is False
        assert params["fields"] == ["material_id"]
        assert params["batch_id_not_eq"] == "gnome_r2scan_statics"
    xas_params = [p for k, p in server.calls if k == "xas"]
    assert all(str(p["edge"]) == "K" and str(p["spectrum_type"]) == "XANES"
               for p in xas_params)
    # the dropped materials are never asked for spectra
    assert not DROPPED_SELECTION & set(server.requested_ids("xas"))

    snap = load_snapshot(path)
    assert snap.source == "mp"
    assert sorted(snap.materials["material_id"]) == sorted(KEPT)
    keys = set(zip(snap.spectra["material_id"], snap.spectra["element"],
                   snap.spectra["edge"], strict=True))
    assert keys == {("mp-19006", "Mn", "K"), ("mp-19006", "O", "K"), ("mp-19009", "Ni", "K"),
                    ("mp-22408", "Co", "K"), ("mp-18905", "Fe", "K"),
                    ("mp-aaaahilze", "Cu", "K")}
    assert set(snap.spectra["source"]) == {"mp:xas"} and set(snap.spectra["kind"]) == {"XANES"}
    row = snap.materials.set_index("material_id").loc["mp-19006"]
    assert row["crystal_system"] == "cubic" and row["ordering"] == "AFM"
    assert row["band_gap"] == pytest.approx(0.9)
    assert snap.materials.set_index("material_id").loc["mp-19009", "ordering"] is None
    mn = snap.spectra_of("mp-19006").set_index("element").loc["Mn"]
    assert mn["energy"].shape == (100,) and mn["energy"][0] == pytest.approx(6519.0)

    manifest = snap.manifest
    assert manifest["label_sources"]["band_gap"] == mp.MP_LABEL_SOURCE
    assert manifest["mp_database_version"] == "2025.09.25"
    assert manifest["selection"]["elements_range"] == [2, 5]
    counts = manifest["mp_fetch"]["counts"]
    assert counts["outside_selection"] == 3 and counts["without_xanes"] == 1
    assert counts["materials"] == 5 and counts["spectra"] == 6
    assert not (tmp_path / "mp.partial").exists()


def test_transient_error_is_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    docs: tuple[list[SummaryDoc], list[XASDoc]]) -> None:
    failed: list[str] = []

    def hook(kind: str, ids: list[str], _: int) -> None:
        if kind == "summary" and "mp-19009" in ids and "summary" not in failed:
            failed.append("summary")
            raise MPRestError("REST query returned with error status code 503 on URL x")
        if kind == "xas" and "mp-19009" in ids and "xas" not in failed:
            failed.append("xas")
            raise requests.exceptions.ConnectionError("connection reset by peer")

    delays: list[float] = []
    monkeypatch.setattr(mp.time, "sleep", delays.append)
    server = FakeServer(*docs, hook=hook)
    path = _fetch(tmp_path, _client(server, monkeypatch), backoff_s=0.5)
    assert failed == ["summary", "xas"] and delays == [0.5, 0.5]
    assert server.requested_ids("summary").count("mp-19009") == 2
    assert "mp-19009" in set(load_snapshot(path).materials["material_id"])


def test_retries_exhausted_and_permanent_errors(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch,
                                               docs: tuple[list[SummaryDoc], list[XASDoc]]
                                               ) -> None:
    delays: list[float] = []
    monkeypatch.setattr(mp.time, "sleep", delays.append)

    def always(kind: str, ids: list[str], _: int) -> None:
        if kind == "xas" and "mp-22408" in ids:
            raise TimeoutError("read timed out")

    server = FakeServer(*docs, hook=always)
    with pytest.raises(DataSourceError, match=r"XAS documents of chunk 2 .*4 attempt"):
        _fetch(tmp_path, _client(server, monkeypatch), retries=3, backoff_s=1.0)
    assert delays == [1.0, 2.0, 4.0]  # exponential backoff
    assert (tmp_path / "mp.partial" / "chunk-00000.jsonl").is_file()  # finished work kept
    assert not (tmp_path / "mp").exists()

    def forbidden(kind: str, ids: list[str], _: int) -> None:
        raise MPRestError("REST query returned with error status code 401 on URL x")

    server = FakeServer(*docs, hook=forbidden)
    with pytest.raises(DataSourceError, match="status code 401"):
        _fetch(tmp_path, _client(server, monkeypatch), cache_dir=tmp_path / "other")
    assert len(server.calls) == 1  # not retried


def test_interrupted_run_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                 docs: tuple[list[SummaryDoc], list[XASDoc]]) -> None:
    def interrupt(kind: str, ids: list[str], _: int) -> None:
        if kind == "summary" and "mp-22408" in ids:  # the third chunk
            raise KeyboardInterrupt

    first = FakeServer(*docs, hook=interrupt)
    with pytest.raises(KeyboardInterrupt):
        _fetch(tmp_path, _client(first, monkeypatch))
    cache = tmp_path / "mp.partial"
    ids = json.loads((cache / "ids.json").read_text())
    assert len(ids) == len(MATERIALS)
    done = sorted(p.name for p in cache.glob("chunk-*.jsonl"))
    assert done == ["chunk-00000.jsonl", "chunk-00001.jsonl"]
    assert not list(cache.glob("*.tmp")) and not (tmp_path / "mp").exists()

    with pytest.raises(ConfigurationError, match="different settings"):
        _fetch(tmp_path, _client(FakeServer(*docs), monkeypatch), chunk_size=3)

    second = FakeServer(*docs)
    path = _fetch(tmp_path, _client(second, monkeypatch), site_labels=True)
    assert second.count("list") == 0  # id list from the cache
    assert not set(ids[:4]) & set(second.requested_ids("summary"))  # chunks 0, 1 not redone
    assert sorted(second.requested_ids("summary")) == sorted(ids[4:])
    snap = load_snapshot(path)
    assert sorted(snap.materials["material_id"]) == sorted(KEPT)
    assert len(snap.spectra) == 6
    assert snap.sites("mp-19006") == [{"element": "Mn", "site_index": 0, "multiplicity": 4,
                                       "oxidation_state": 2, "coordination_number": 6}]
    assert "oxidation_state" in snap.manifest["label_sources"]
    assert not cache.exists()


def test_max_materials_and_existing_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           docs: tuple[list[SummaryDoc], list[XASDoc]]
                                           ) -> None:
    server = FakeServer(*docs)
    path = _fetch(tmp_path, _client(server, monkeypatch), max_materials=3)
    assert len(set(server.requested_ids("summary"))) == 3
    assert load_snapshot(path).manifest["mp_fetch"]["material_ids"] == 3
    with pytest.raises(SnapshotError, match="already exists"):
        _fetch(tmp_path, _client(server, monkeypatch))
