"""Structure encoder of the XAStruct forward model: the pretrained CHGNet of the ``chgnet``
package.

XAStruct encodes a crystal with a graph network (CHGNet in the paper), takes the node
embeddings ``h_i`` and averages them over the absorber and its immediate neighbours (a binary
mask, XAStruct eq. 3). Here:

* The encoder is CHGNet 0.3.0 (MPtrj-pretrained), loaded from the weights that ship inside the
  ``chgnet`` wheel (``CHGNet.load``; nothing is fetched), run in inference mode with its
  parameters frozen. Its per-site features are the atom features after the last interaction
  block (``return_atom_feas=True``): shape ``(n_sites, 64)``.
* The pooled embedding of an absorbing element is the weighted mean of those features over
  the element's inequivalent sites and their CrystalNN neighbours, each weighted by the
  multiplicity of the absorber site (:attr:`~.local_env.ElementEnvironment.pool_weights`);
  for a single absorber site this is XAStruct's masked mean.

Frozen vs fine-tuned: :mod:`.study` measures the choice (the note of the XAStruct issue quotes
it); fine-tuning runs the whole CHGNet per training step and costs ~30× more per epoch on two
CPU cores.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
from pymatgen.core import Structure

__all__ = [
    "ENCODER_NAME",
    "FEATURE_DIM",
    "load_chgnet",
    "pool_features",
    "site_features",
]

logger = logging.getLogger(__name__)

#: Name and version of the encoder, stored in every checkpoint and cache.
ENCODER_NAME = "chgnet-0.3.0-atom_fea"
#: Width of CHGNet's atom features.
FEATURE_DIM = 64


@lru_cache(maxsize=1)
def load_chgnet():
    """The pretrained CHGNet 0.3.0 from the installed ``chgnet`` package, frozen, on CPU."""
    from chgnet.model import CHGNet

    model = CHGNet.load(model_name="0.3.0", use_device="cpu", verbose=False)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def site_features(structures: Sequence[Structure], *, batch_size: int = 16
                  ) -> list[np.ndarray]:
    """CHGNet atom features of every site of every structure.

    Args:
        structures: Ordered structures.
        batch_size: Structures per CHGNet batch.

    Returns:
        One float32 array of shape ``(n_sites, FEATURE_DIM)`` per structure.
    """
    if not structures:
        return []
    model = load_chgnet()
    out = model.predict_structure(list(structures), task="e", return_atom_feas=True,
                                  batch_size=batch_size)
    if isinstance(out, dict):
        out = [out]
    return [np.asarray(o["atom_fea"], dtype=np.float32) for o in out]


def pool_features(features: np.ndarray, weights: Mapping[int, float]) -> np.ndarray:
    """Weighted mean of per-site features over the pooled sites.

    Args:
        features: Per-site features, shape ``(n_sites, d)``.
        weights: Site index → weight (absorbers and their neighbours).

    Returns:
        Shape ``(d,)``.
    """
    idx = np.fromiter(weights.keys(), dtype=np.int64)
    w = np.fromiter(weights.values(), dtype=np.float64)
    return (features[idx] * w[:, None]).sum(axis=0) / w.sum()
