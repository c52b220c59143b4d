"""Frozen vs fine-tuned CHGNet encoder for one element's XAStruct forward model.

Both start from the same family split of the demo's XAStruct table (``data/xastruct``):

* **frozen** -- the head of notebook 13 (:func:`~specfusion_lib.xas_structure.forward.train_head`)
  on the cached, frozen CHGNet embeddings;
* **fine-tuned** -- that trained head plus a trainable copy of CHGNet 0.3.0, trained together
  end-to-end (AdamW; encoder learning rate ``--encoder-lr``, head 1e-4) for at most
  ``--epochs`` epochs, early-stopped on the validation rows; the embedding is re-pooled over
  absorber + CrystalNN neighbours from the live CHGNet atom features at every step.

Prints the test MAE of both (the choice is made on validation MAE; test is reported once) and
the seconds per fine-tuning epoch on this machine.

Usage::

    python benchmarks/xastruct_finetune.py [--element Cu] [--epochs 6]
"""

from __future__ import annotations

import argparse
import copy
import logging
import time

import numpy as np
import torch
from chgnet.model import CHGNet

from specfusion_lib.data.snapshot import load_snapshot
from specfusion_lib.xas_structure.dataset import DEFAULT_ENV_DIR, build_dataset
from specfusion_lib.xas_structure.forward import train_head
from specfusion_lib.xas_structure.local_env import cached_environments
from specfusion_lib.xas_structure.study import material_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--element", default="Cu")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--encoder-lr", type=float, default=1e-4)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--data", default="data/demo")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)

    snapshot = load_snapshot(args.data)
    table = build_dataset(snapshot, progress=False)
    parts = material_split(table)
    rows = np.flatnonzero(table.element == args.element)
    tr, va, te = (rows[parts[rows] == p] for p in ("train", "val", "test"))
    head, _ = train_head(table.features, table.mu, tr, va)
    with torch.no_grad():
        def frozen_mae(idx):
            pred = head(torch.as_tensor(table.features[idx]))
            return float((pred - torch.as_tensor(table.mu[idx])).abs().mean())
        frozen = {"val": frozen_mae(va), "test": frozen_mae(te)}
    print(f"{args.element}: {len(tr)} train / {len(va)} val / {len(te)} test spectra")
    print(f"frozen CHGNet     val MAE {frozen['val']:.4f}  test MAE {frozen['test']:.4f}")

    encoder = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
    structures = {i: snapshot.structure(table.material_id[i]) for i in rows}
    graphs = {i: encoder.graph_converter(structures[i]) for i in rows}
    weights = {}
    for i in rows:
        env = cached_environments(table.material_id[i], structures[i], [args.element],
                                  DEFAULT_ENV_DIR)[args.element]
        idx = torch.as_tensor(list(env.pool_weights), dtype=torch.long)
        w = torch.as_tensor(list(env.pool_weights.values()), dtype=torch.float32)
        weights[i] = (idx, w / w.sum())
    y = torch.as_tensor(table.mu, dtype=torch.float32)

    def predict(batch):
        feas = encoder([graphs[i] for i in batch], task="e", return_atom_feas=True)["atom_fea"]
        pooled = torch.stack([(f[weights[i][0]] * weights[i][1][:, None]).sum(0)
                              for f, i in zip(feas, batch, strict=True)])
        return head(pooled)

    def mae(idx):
        encoder.eval()
        head.eval()
        with torch.no_grad():
            errs = [(predict(idx[k:k + 32]) - y[idx[k:k + 32]]).abs().mean(1)
                    for k in range(0, len(idx), 32)]
        return float(torch.cat(errs).mean())

    opt = torch.optim.AdamW([{"params": encoder.parameters(), "lr": args.encoder_lr},
                             {"params": head.parameters(), "lr": 1e-4}], weight_decay=0.01)
    best = (mae(va), copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict()), 0)
    rng = np.random.default_rng(0)
    seconds = []
    for epoch in range(1, args.epochs + 1):
        encoder.train()
        head.train()
        t0 = time.perf_counter()
        order = rng.permutation(tr)
        for k in range(0, len(order), args.batch):
            batch = order[k:k + args.batch]
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(predict(batch), y[batch])
            loss.backward()
            opt.step()
        seconds.append(time.perf_counter() - t0)
        val = mae(va)
        print(f"  epoch {epoch}: val MAE {val:.4f} ({seconds[-1]:.0f} s)")
        if val < best[0]:
            best = (val, copy.deepcopy(encoder.state_dict()), copy.deepcopy(head.state_dict()),
                    epoch)
    encoder.load_state_dict(best[1])
    head.load_state_dict(best[2])
    print(f"fine-tuned CHGNet val MAE {best[0]:.4f}  test MAE {mae(te):.4f} "
          f"(best epoch {best[3]} of {args.epochs}; {np.mean(seconds):.0f} s/epoch)")


if __name__ == "__main__":
    main()
