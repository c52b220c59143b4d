"""Crystal graphs for the universal XANES model (CGXAS, seed 003, Methods A).

A crystal becomes a graph whose nodes are the atoms of the unit cell and whose directed edges
join each atom to its nearest neighbours (periodic images included): at most
:data:`MAX_NEIGHBOURS` (12, as CGXAS) within :data:`CUTOFF` (8 Å, as CGXAS), nearest first.

* **Node features** (:func:`atom_features`, width :data:`ATOM_FEATURE_DIM`) come from element
  properties only, so an element the model never saw as absorber still has a meaningful
  input: the six SI Fig. S5 descriptors (χ, atomic radius, IE1–IE3, Z; standardised with the
  periodic table's statistics, Z = 1–94), the element type (one-hot, 5), and one-hot blocks of
  group (18), period (7) and orbital block (4).
* **Edge features**: the distance, expanded on :data:`N_GAUSSIANS` Gaussians between 0 and the
  cutoff (:class:`GaussianExpansion`, ``exp(−(d − μ_k)² / w²)``). CGXAS adds a plane-wave
  basis of the bond direction (geo-CGNN); we keep distances only, which is rotation- and
  translation-invariant and enough for the K-edge's radial information (written down as a
  difference to the paper).

A :class:`CrystalGraph` is plain numpy (cheap to cache and to pickle); :func:`batch_graphs`
concatenates several into torch tensors with node offsets, the usual disjoint-union batch.
The message passing itself is written with ``index_add_`` (``benchmarks/cgxas.py`` compares
it with torch-geometric's ``CGConv`` on the same graphs).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from pymatgen.core import Element, Structure
from torch import Tensor, nn

from specfusion_lib.core.elements import descriptor_matrix

__all__ = [
    "ATOM_FEATURE_DIM",
    "CUTOFF",
    "MAX_NEIGHBOURS",
    "N_GAUSSIANS",
    "CrystalGraph",
    "GaussianExpansion",
    "GraphBatch",
    "atom_features",
    "batch_graphs",
    "build_graph",
]

#: Neighbour cutoff (Å), as CGXAS.
CUTOFF = 8.0
#: Most neighbours per atom, as CGXAS.
MAX_NEIGHBOURS = 12
#: Gaussians of the distance expansion.
N_GAUSSIANS = 40
_MAX_Z = 94


@functools.lru_cache(maxsize=1)
def _feature_table() -> np.ndarray:
    """Row ``Z`` = the features of the element with atomic number ``Z`` (row 0 unused)."""
    symbols = [Element.from_Z(z).symbol for z in range(1, _MAX_Z + 1)]
    desc = descriptor_matrix(symbols)
    numeric = desc[:, :6]
    numeric = (numeric - numeric.mean(axis=0)) / numeric.std(axis=0)
    types = desc[:, 6:]
    blocks = []
    for symbol in symbols:
        el = Element(symbol)
        group = np.zeros(18)
        group[el.group - 1] = 1.0
        period = np.zeros(7)
        period[el.row - 1] = 1.0
        block = np.zeros(4)
        block["spdf".index(el.block)] = 1.0
        blocks.append(np.concatenate([group, period, block]))
    table = np.concatenate([numeric, types, np.array(blocks)], axis=1)
    return np.vstack([np.zeros(table.shape[1]), table]).astype(np.float32)


#: Width of one node feature vector.
ATOM_FEATURE_DIM = int(_feature_table().shape[1])


def atom_features(numbers: np.ndarray) -> np.ndarray:
    """Node features of atoms with atomic numbers ``numbers`` (shape ``(n,)``), shape
    ``(n, ATOM_FEATURE_DIM)``."""
    z = np.asarray(numbers, dtype=int)
    if z.size and (z.min() < 1 or z.max() > _MAX_Z):
        raise ValueError(f"atomic numbers must lie in 1-{_MAX_Z}, got {z.min()}-{z.max()}")
    return _feature_table()[z]


@dataclass(frozen=True)
class CrystalGraph:
    """The graph of one crystal.

    Attributes:
        numbers: Atomic number of every node, shape ``(n_atoms,)``.
        src: Centre atom of every edge, shape ``(n_edges,)`` (messages flow ``dst → src``).
        dst: Neighbour atom of every edge, shape ``(n_edges,)``.
        distance: Edge lengths (Å), shape ``(n_edges,)``.
    """

    numbers: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    distance: np.ndarray

    @property
    def n_atoms(self) -> int:
        """Number of nodes."""
        return int(len(self.numbers))

    def to_dict(self) -> dict[str, Any]:
        """Plain arrays (for caching)."""
        return {"numbers": self.numbers, "src": self.src, "dst": self.dst,
                "distance": self.distance}


def build_graph(structure: Structure, *, cutoff: float = CUTOFF,
                max_neighbours: int = MAX_NEIGHBOURS) -> CrystalGraph:
    """The crystal graph of an ordered structure (see the module docstring).

    Raises:
        ValueError: A disordered structure, or an atom without a neighbour within ``cutoff``.
    """
    if not structure.is_ordered:
        raise ValueError(f"{structure.composition.reduced_formula}: disordered structure; "
                         "a crystal graph needs one element per site")
    centre, neighbour, _, distance = structure.get_neighbor_list(cutoff)
    order = np.lexsort((distance, centre))
    centre, neighbour, distance = centre[order], neighbour[order], distance[order]
    n = len(structure)
    starts = np.searchsorted(centre, np.arange(n))
    rank = np.arange(len(centre)) - starts[centre]
    keep = rank < max_neighbours
    lonely = sorted(set(range(n)) - set(centre[keep].tolist()))
    if lonely:
        raise ValueError(f"{structure.composition.reduced_formula}: site(s) {lonely[:5]} have "
                         f"no neighbour within {cutoff} Å")
    numbers = np.array([site.specie.Z for site in structure], dtype=np.int64)
    return CrystalGraph(numbers, centre[keep].astype(np.int64),
                        neighbour[keep].astype(np.int64), distance[keep].astype(np.float32))


@dataclass
class GraphBatch:
    """Several graphs as one disjoint graph.

    Attributes:
        atom_fea: Node features, shape ``(N, ATOM_FEATURE_DIM)``.
        src, dst: Edge endpoints (batch node indices), shape ``(E,)``.
        distance: Edge lengths (Å), shape ``(E,)``.
        offsets: First node of every graph, shape ``(B,)``.
        numbers: Atomic numbers, shape ``(N,)``.
    """

    atom_fea: Tensor
    src: Tensor
    dst: Tensor
    distance: Tensor
    offsets: Tensor
    numbers: Tensor


def batch_graphs(graphs: list[CrystalGraph]) -> GraphBatch:
    """Concatenate graphs (node indices shifted by each graph's offset)."""
    sizes = np.array([g.n_atoms for g in graphs])
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
    numbers = np.concatenate([g.numbers for g in graphs])
    src = np.concatenate([g.src + o for g, o in zip(graphs, offsets, strict=True)])
    dst = np.concatenate([g.dst + o for g, o in zip(graphs, offsets, strict=True)])
    distance = np.concatenate([g.distance for g in graphs])
    return GraphBatch(torch.from_numpy(atom_features(numbers)), torch.from_numpy(src),
                      torch.from_numpy(dst), torch.from_numpy(distance),
                      torch.from_numpy(offsets), torch.from_numpy(numbers))


class GaussianExpansion(nn.Module):
    """Distances ``(E,)`` → Gaussian features ``(E, n_gaussians)``.

    Args:
        n_gaussians: Number of centres, evenly spaced on ``[0, cutoff]``.
        cutoff: Largest distance (Å).
    """

    def __init__(self, n_gaussians: int = N_GAUSSIANS, cutoff: float = CUTOFF) -> None:
        super().__init__()
        centres = torch.linspace(0.0, cutoff, n_gaussians)
        self.register_buffer("centres", centres)
        self.width = float(centres[1] - centres[0])

    def forward(self, distance: Tensor) -> Tensor:
        return torch.exp(-((distance[:, None] - self.centres) / self.width) ** 2)
