"""XAStruct forward model speed against FEFF10, and training time per epoch.

Prints, on this machine:

* spectra per second of the trained forward model (``build/xastruct/forward``; trained on the
  demo table on first use) predicting the K edge of ``--n`` demo structures of ``--element``
  from their structures -- batched (one CHGNet pass over all structures) and one at a time --
  with the CrystalNN + CHGNet encoding included, and from precomputed embeddings (head only);
* seconds per spectrum of FEFF10 (``fast`` preset, one absorbing site per structure, one
  core) on the first ``--feff`` of the same structures;
* seconds per training epoch of one head (the element's training rows).

Usage::

    python benchmarks/xastruct.py [--element Cu] [--n 32] [--feff 2]
"""

from __future__ import annotations

import argparse
import logging
import time

import numpy as np
import torch

from specfusion_lib.data.snapshot import load_snapshot
from specfusion_lib.simulate.feff import simulate_site
from specfusion_lib.xas_structure.dataset import build_dataset
from specfusion_lib.xas_structure.forward import TrainSettings, train_head
from specfusion_lib.xas_structure.study import material_split
from specfusion_lib.xas_structure.user import load_or_train_forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--element", default="Cu")
    parser.add_argument("--n", type=int, default=32, help="structures to predict")
    parser.add_argument("--feff", type=int, default=2, help="structures to simulate")
    parser.add_argument("--data", default="data/demo")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)

    snapshot = load_snapshot(args.data)
    table = build_dataset(snapshot, progress=False)
    ids = list(dict.fromkeys(table.material_id[table.element == args.element]))[:args.n]
    structures = [snapshot.structure(m) for m in ids]
    model = load_or_train_forward()

    model.predict_structures(structures[:1], args.element)  # warm-up (loads CHGNet)
    t0 = time.perf_counter()
    model.predict_structures(structures, args.element)
    batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in structures:
        model.predict_structure(s, args.element)
    single = time.perf_counter() - t0
    feats = table.features[table.element == args.element][:len(ids)]
    t0 = time.perf_counter()
    for _ in range(100):
        model.predict_features(feats, args.element)
    head_only = (time.perf_counter() - t0) / 100
    print(f"forward model, {len(ids)} {args.element} structures (CrystalNN + CHGNet + head):")
    print(f"  batched        {len(ids) / batched:8.1f} spectra/s")
    print(f"  one at a time  {len(ids) / single:8.1f} spectra/s")
    print(f"  head only      {len(ids) / head_only:8.0f} spectra/s (precomputed embeddings)")

    feff_s = []
    for s in structures[:args.feff]:
        site = next(i for i, sp in enumerate(s) if sp.specie.symbol == args.element)
        t0 = time.perf_counter()
        simulate_site(s, site, preset="fast")
        feff_s.append(time.perf_counter() - t0)
    if feff_s:
        print(f"FEFF10 fast, {len(feff_s)} sites: {np.mean(feff_s):.1f} s/spectrum "
              f"({1 / np.mean(feff_s):.3f} spectra/s); forward model batched is "
              f"{np.mean(feff_s) * len(ids) / batched:.0f}x faster")

    parts = material_split(table)
    rows = np.flatnonzero(table.element == args.element)
    tr, va = rows[parts[rows] == "train"], rows[parts[rows] == "val"]
    settings = TrainSettings(max_epochs=50, patience=50)
    t0 = time.perf_counter()
    _, loop = train_head(table.features, table.mu, tr, va, settings=settings)
    elapsed = time.perf_counter() - t0
    print(f"training one {args.element} head: {elapsed / len(loop.history) * 1e3:.1f} ms/epoch "
          f"({len(tr)} training spectra, {loop.samples_per_second:.0f} samples/s)")


if __name__ == "__main__":
    main()
