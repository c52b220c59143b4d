"""CGXAS universal model: training time per epoch, prediction speed, calibration time, and
our ``index_add_`` message passing against torch-geometric's ``CGConv``.

Prints, on this machine:

* seconds per training epoch of the universal model on ``--materials`` demo training
  materials (their site spectra), with the quick profile's architecture;
* spectra per second predicted from structures by the shipped universal model
  (``data/models/cgxas-universal-family-seed0.pt``): batched (graphs built and batched by
  64) and one structure at a time, graph construction included;
* seconds per calibration fit of each variant on the measured spectra of ``experiment.csv``
  whose compound is in the demo snapshot;
* forward + backward time of one gated graph convolution over the same batch of graphs,
  written with ``index_add_`` (ours) and with torch-geometric's ``CGConv`` (same gate,
  summed messages) when ``torch_geometric`` can be imported (it is not a dependency of the
  package; ``pip install --no-deps torch-geometric`` into a scratch folder on ``PYTHONPATH``
  is enough for this comparison).

Usage::

    python benchmarks/cgxas.py [--materials 200] [--epochs 2] [--predict 128]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

from specfusion_lib.data.measured import read_measured_xanes
from specfusion_lib.data.snapshot import load_snapshot
from specfusion_lib.measured.study import match_measured
from specfusion_lib.training.checkpoints import load
from specfusion_lib.xas_structure import calibration as cal
from specfusion_lib.xas_structure.cgxas import (
    CGXASForward,
    CGXASSettings,
    GatedGraphConv,
    average_targets,
    build_graphs,
    predict_targets,
    site_targets,
    train_cgxas,
)
from specfusion_lib.xas_structure.cgxas_study import SHIPPED_CHECKPOINT
from specfusion_lib.xas_structure.crystal_graph import GaussianExpansion, batch_graphs


def _timed(fn, repeat: int = 3) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--materials", type=int, default=200, help="training materials")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs timed")
    parser.add_argument("--predict", type=int, default=128, help="structures predicted")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    snapshot = load_snapshot(args.data)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")

    targets = site_targets(snapshot)
    materials = sorted(set(targets.material_id))
    chosen = set(materials[:args.materials])
    train = targets.subset(np.array([m in chosen for m in targets.material_id]))
    graphs = build_graphs(snapshot, train.material_id)
    _, loop = train_cgxas(graphs, train, train.subset(range(min(64, len(train)))),
                          settings=CGXASSettings(max_epochs=args.epochs, patience=args.epochs))
    print(f"training: {loop.train_seconds / len(loop.history):.2f} s per epoch over "
          f"{len(train)} site spectra of {len(chosen)} materials "
          f"({loop.samples_per_second:.0f} materials/s)")

    model, meta = load(SHIPPED_CHECKPOINT)
    forward = CGXASForward(model, meta)
    spectra = snapshot.spectra
    rows = spectra[spectra["element"] == "Cu"].head(args.predict)
    structures = [snapshot.structure(m) for m in rows["material_id"]]
    start = time.perf_counter()
    graphs_p = build_graphs(snapshot, rows["material_id"])
    avg = average_targets(snapshot, rows["material_id"].tolist(), ["Cu"] * len(rows),
                          np.zeros((len(rows), 100), np.float32))
    predict_targets(model, graphs_p, avg)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    for structure in structures[:32]:
        forward.predict_structures([structure], "Cu")
    single = (time.perf_counter() - start) / min(32, len(structures))
    print(f"prediction (Cu K edge, graphs included): {len(rows) / batched:.1f} spectra/s "
          f"batched, {1 / single:.1f} spectra/s one at a time")

    records = read_measured_xanes()
    measured = cal.measured_set(records, snapshot, match_measured(records, snapshot))
    for variant in cal.VARIANTS:
        seconds = _timed(lambda v=variant: cal.fit_calibration(model, measured, v), repeat=2)
        print(f"calibration {variant}: {seconds:.2f} s per fit on {len(measured)} spectra")

    batch = batch_graphs([graphs[m] for m in sorted(chosen)[:64]])
    hidden = model.model_args["hidden"]
    h = torch.randn(len(batch.numbers), hidden, requires_grad=True)
    edge = GaussianExpansion()(batch.distance)
    ours = GatedGraphConv(hidden, edge.shape[1])

    def run_ours() -> None:
        ours(h, batch.src, batch.dst, edge).sum().backward()

    print(f"gated convolution, {len(batch.numbers)} nodes, {len(batch.src)} edges: "
          f"index_add_ {1e3 * _timed(run_ours, 10):.1f} ms (forward + backward)")
    try:
        from torch_geometric.nn import CGConv
    except ImportError:
        print("torch_geometric not importable: CGConv not timed")
        return
    theirs = CGConv(hidden, dim=edge.shape[1], aggr="add")
    index = torch.stack([batch.dst, batch.src])  # messages flow neighbour → centre

    def run_theirs() -> None:
        theirs(h, index, edge).sum().backward()

    print(f"                                              torch_geometric CGConv "
          f"{1e3 * _timed(run_theirs, 10):.1f} ms (forward + backward)")


if __name__ == "__main__":
    main()
