"""What ``specfusion predict-xanes`` and ``specfusion local-structure`` do, as functions.

* :func:`predict_xanes` -- a structure file (CIF, POSCAR, anything pymatgen reads) and an
  absorbing element → the predicted edge-normalised K-edge spectrum on the element's
  absolute grid (:mod:`.grid`), from the XAStruct forward model.
* :func:`local_structure` -- a measured or simulated spectrum file (XDI, columns, CSV) of an
  element → CN, MNND and neighbour type with class probabilities, from the XAStruct inverse
  models.

The models are trained on the committed demo table (``data/xastruct``) on first use (family
split, training part; ~20 s for the forward heads, ~30 s for the MNND network) and saved
under ``build/xastruct/`` with their metadata, so later calls only load them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pymatgen.core import Structure

from specfusion_lib.core.errors import ElementError, InputFileError
from specfusion_lib.xas_structure.forward import GriddedXANES, XAStructForward

__all__ = ["DEFAULT_MODEL_DIR", "LocalStructure", "load_or_train_forward", "local_structure",
           "predict_xanes"]

logger = logging.getLogger(__name__)

#: Where the models trained on first use are kept.
DEFAULT_MODEL_DIR = Path("build/xastruct")
#: Snapshot whose table trains the models.
DEFAULT_DATA = Path("data/demo")


def _demo_table(data: str | Path):
    from specfusion_lib.data.snapshot import load_snapshot
    from specfusion_lib.xas_structure.dataset import build_dataset

    return build_dataset(load_snapshot(data), progress=False)


def load_or_train_forward(model_dir: str | Path = DEFAULT_MODEL_DIR,
                          data: str | Path = DEFAULT_DATA) -> XAStructForward:
    """The forward model in ``model_dir/forward``, trained on ``data``'s table if absent."""
    from specfusion_lib.xas_structure.study import forward_study

    folder = Path(model_dir) / "forward"
    if (folder / "forward.json").is_file():
        return XAStructForward.load(folder)
    logger.info("no XAStruct forward model in %s: training one on %s", folder, data)
    study = forward_study(_demo_table(data), variants=("sgmlp",), baselines=False)
    study.forward.save(folder)
    return study.forward


def _read_structure(path: str | Path) -> Structure:
    path = Path(path)
    if not path.is_file():
        raise InputFileError(f"{path}: no such structure file")
    try:
        return Structure.from_file(path)
    except Exception as exc:  # pymatgen raises many types for unreadable files
        raise InputFileError(f"{path}: not a readable structure ({type(exc).__name__}: "
                             f"{exc})") from exc


def predict_xanes(structure_file: str | Path, element: str, *,
                  model_dir: str | Path = DEFAULT_MODEL_DIR) -> GriddedXANES:
    """Predicted K-edge XANES of ``element`` in the structure of ``structure_file``.

    Raises:
        InputFileError: The file is missing or unreadable.
        ElementError: The structure holds no ``element``, or the model has no head for it.
    """
    structure = _read_structure(structure_file)
    if element not in {el.symbol for el in structure.composition}:
        raise ElementError(f"{structure_file}: {structure.composition.reduced_formula} holds no "
                           f"{element}")
    model = load_or_train_forward(model_dir)
    if element not in model.elements:
        raise ElementError(f"the XAStruct forward model was trained for "
                           f"{', '.join(model.elements)}; it cannot predict the {element} K edge")
    return model.predict_structure(structure, element)


@dataclass
class LocalStructure:
    """What :func:`local_structure` returns.

    Attributes:
        element: Absorbing element.
        cn: Most probable coordination number and the forest's class probabilities.
        mnnd: Predicted mean nearest-neighbour distance (Å).
        neighbour_type: Most probable neighbour element and the class probabilities.
    """

    element: str
    cn: tuple[int, dict[int, float]]
    mnnd: float
    neighbour_type: tuple[str, dict[str, float]]

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        def top(probs: dict, k: int = 4) -> str:
            return ", ".join(f"{c} {p:.2f}" for c, p in
                             sorted(probs.items(), key=lambda kv: -kv[1])[:k])
        return [f"element        {self.element}",
                f"CN             {self.cn[0]}   ({top(self.cn[1])})",
                f"MNND           {self.mnnd:.3f} Å",
                f"neighbour type {self.neighbour_type[0]}   ({top(self.neighbour_type[1])})"]


def local_structure(spectrum_file: str | Path, element: str, *,
                    model_dir: str | Path = DEFAULT_MODEL_DIR,
                    data: str | Path = DEFAULT_DATA, seed: int = 0) -> LocalStructure:
    """CN, MNND and neighbour type of ``element`` from its K-edge spectrum file.

    The spectrum is checked to show ``element``'s K edge, edge-normalised and put on the
    element's absolute grid. The CN forest and neighbour-type network of the element are
    trained on the demo table's training part (family split; seconds); the all-element MNND
    network is trained once and kept in ``model_dir/inverse``.

    Raises:
        InputFileError: The file is missing or unreadable.
        WrongElementError: The spectrum shows another element's edge.
        ElementError: No model for ``element`` (too few training spectra).
    """
    from specfusion_lib.spectra.xanes_readers import read_xanes
    from specfusion_lib.training.checkpoints import load, save_checkpoint
    from specfusion_lib.xas_structure import inverse as inv
    from specfusion_lib.xas_structure.grid import grid_window, to_grid
    from specfusion_lib.xas_structure.study import (
        MIN_ROWS,
        _grid_energies,
        material_split,
        trainable_elements,
    )

    spectrum = read_xanes(spectrum_file, element=element, edge="K")
    mu = to_grid(spectrum.energy, spectrum.mu, element, source=str(spectrum_file))[None, :]
    table = _demo_table(data)
    parts = material_split(table, seed=seed)
    elements = trainable_elements(table, parts, MIN_ROWS)
    if element not in elements:
        raise ElementError(f"no XAStruct inverse model for the {element} K edge: the training "
                           f"table has too few {element} spectra (models: {', '.join(elements)})")
    rows = np.flatnonzero(table.element == element)
    tr, va = rows[parts[rows] == "train"], rows[parts[rows] == "val"]
    forest = inv.cn_random_forest(seed).fit(table.mu[tr], table.cn[tr])
    cn_prob = dict(zip((int(c) for c in forest.classes_), forest.predict_proba(mu)[0].tolist(),
                       strict=True))
    net, classes = inv.fit_neighbour_net(table.mu, table.neighbour_type, tr, va, seed=seed)
    nb_prob = dict(zip(classes, inv.neighbour_probabilities(net, mu)[0].tolist(), strict=True))
    path = Path(model_dir) / "inverse" / "mnnd.pt"
    if path.is_file():
        mnnd_net, _ = load(path)
    else:
        keep = np.isin(table.element, elements)
        energies = _grid_energies(table.element)
        mnnd_net, _ = inv.fit_mnnd_net(energies, table.mu, table.mnnd,
                                       np.flatnonzero(keep & (parts == "train")),
                                       np.flatnonzero(keep & (parts == "val")), seed=seed)
        save_checkpoint(path, mnnd_net, {"snapshot_id": table.meta.get("snapshot_id"),
                                         "seed": seed, "split_by": "family",
                                         "elements": elements})
    mnnd = float(inv.predict_mnnd(mnnd_net, grid_window(element).energies[None, :], mu)[0])
    return LocalStructure(element, (max(cn_prob, key=cn_prob.get), cn_prob), mnnd,
                          (max(nb_prob, key=nb_prob.get), nb_prob))
