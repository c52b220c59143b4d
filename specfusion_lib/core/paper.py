"""Every reference value of the paper that the library compares against, in one place.

The values are cited from Wang et al., Chem. Sci. 2026 (DOI 10.1039/d6sc00651e): its main
text and its Supplementary Information (SI). Each one carries the text as the paper states it
(``"> 0.82"``), the number used for plotting, and where the paper states it
(``"main text, Fig. 4d"``).

This is the only module that types a paper number. Tables, figures, the figure catalogue and
the notebooks take their reference values from here; nothing else in the library may type
one.

Contents, by paper figure / table:

* SI Fig. S1 (dataset): :data:`FIG_S1_COMPOUNDS`, :data:`FIG_S1_OXYGEN_COMPOUNDS`.
* Fig. 2c–g and SI Fig. S8 (property prediction): :data:`CLASSIFICATION_SCORE`,
  :data:`ENERGY_MAE`, :data:`DENSITY_MAE` and, per (task, metric), :data:`PROPERTY_VALUES`.
* Fig. 2h (TM-only vs all-element inputs): :data:`FIG2H_BAND_GAP_MAE_DIFFERENCE`,
  :data:`FIG2H_F1_DIFFERENCE`.
* Fig. 4d and SI Fig. S20 (PXRD crystal system): :data:`FIG4D_ACCURACY`.
* SI Fig. S21 (XANES vs PXRD vs fused): :data:`FIG_S21_ACCURACY`.
* Fig. 5b (structure inference): :data:`FIG5B_TOP1`.
* Fig. 6b (Cu2O/TiO2 composite): :data:`FIG6B_COMPOSITE_BAND_GAP`.
* Table 1 and SI Table S1 (measured compounds): :data:`TABLE1`, :data:`TABLE_S1`,
  :data:`TABLE1_SOURCE` and the counts :data:`TABLE1_VALENCE_AND_CN_CONSISTENT`,
  :data:`TABLE1_CRYSTAL_SYSTEM_CONSISTENT`.

The ablation statements of Fig. 3b,c / S13 / S14 hold no numbers and stay with their checks
in :mod:`specfusion_lib.interpret.ablation`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from specfusion_lib.core.tasks import CLASSIFICATION_TASKS

__all__ = [
    "CLASSIFICATION_SCORE",
    "DENSITY_MAE",
    "ENERGY_MAE",
    "FIG2H_BAND_GAP_MAE_DIFFERENCE",
    "FIG2H_F1_DIFFERENCE",
    "FIG4D_ACCURACY",
    "FIG5B_TOP1",
    "FIG6B_COMPOSITE_BAND_GAP",
    "FIG_S1_COMPOUNDS",
    "FIG_S1_OXYGEN_COMPOUNDS",
    "FIG_S21_ACCURACY",
    "PROPERTY_VALUES",
    "TABLE1",
    "TABLE1_CRYSTAL_SYSTEM_CONSISTENT",
    "TABLE1_SOURCE",
    "TABLE1_VALENCE_AND_CN_CONSISTENT",
    "TABLE_S1",
    "CGXAS_EDGE_ERROR",
    "CGXAS_UNIVERSAL_RSE",
    "XASTRUCT_FORWARD_MAE",
    "XASTRUCT_INVERSE",
    "PaperValue",
]


@dataclass(frozen=True)
class PaperValue:
    """A published number to compare with.

    Attributes:
        text: The value as the paper states it (``"> 0.82"``).
        value: The number, for plotting (a bound or a value; the middle of a stated range).
        source: Where the paper states it.
        bound: ``"lower"`` (ours should exceed it), ``"upper"`` (ours should stay below) or
            ``""`` (a plain value).
        span: ``(low, high)`` of a value the paper states as a range (``"0.70–0.78"``), else
            ``None``.
    """

    text: str
    value: float
    source: str
    bound: str = ""
    span: tuple[float, float] | None = None


# --------------------------------------------------------------------------------------------
# SI Fig. S1: the dataset
# --------------------------------------------------------------------------------------------

#: Materials Project compounds of the paper's dataset.
FIG_S1_COMPOUNDS = PaperValue("34,929", 34929.0, "SI Fig. S1")
#: Compounds of the dataset that contain oxygen (the most frequent element).
FIG_S1_OXYGEN_COMPOUNDS = PaperValue("15,259", 15259.0, "SI Fig. S1")

# --------------------------------------------------------------------------------------------
# Fig. 2c–g, SI Fig. S8: property prediction
# --------------------------------------------------------------------------------------------

#: Accuracy and macro-F1 of every classification task.
CLASSIFICATION_SCORE = PaperValue(
    "> 0.82", 0.82, "main text, Fig. 2c and SI Fig. S8 (all classification tasks)", "lower")
#: MAE of the energetic quantities (formation energy, Fermi level, band gap).
ENERGY_MAE = PaperValue(
    "< 0.71 eV", 0.71, "main text, Fig. 2d–g (bound for all energetic quantities)", "upper")
#: MAE of density.
DENSITY_MAE = PaperValue("< 0.60 g/cm³", 0.60, "main text, Fig. 2g", "upper")

# --------------------------------------------------------------------------------------------
# Fig. 2h: TM-edges-only vs all-element inputs
# --------------------------------------------------------------------------------------------

#: Band-gap MAE difference between the two input variants.
FIG2H_BAND_GAP_MAE_DIFFERENCE = PaperValue("0.05 eV", 0.05, "main text, Fig. 2h")
#: Macro-F1 difference of the classification tasks (``value`` as a fraction).
FIG2H_F1_DIFFERENCE = PaperValue("< 6 %", 0.06, "main text, Fig. 2h", "upper")

# --------------------------------------------------------------------------------------------
# Fig. 4d, SI Fig. S20: PXRD crystal-system classifier
# --------------------------------------------------------------------------------------------

_FIG4D = "main text, Fig. 4d"
_FIG4D_LOW = "main text, Fig. 4d and S20 (orthorhombic, monoclinic, triclinic: 0.70–0.78)"
_LOW_SYMMETRY = PaperValue("0.70–0.78", 0.74, _FIG4D_LOW, span=(0.70, 0.78))

#: Test accuracy of the PXRD classifier, ``"overall"`` and per crystal system. The paper gives
#: no per-class number for tetragonal and trigonal.
FIG4D_ACCURACY: dict[str, PaperValue] = {
    "overall": PaperValue("0.81", 0.81, _FIG4D),
    "cubic": PaperValue("> 0.90", 0.90, _FIG4D, "lower"),
    "hexagonal": PaperValue("> 0.90", 0.90, _FIG4D, "lower"),
    "orthorhombic": _LOW_SYMMETRY,
    "monoclinic": _LOW_SYMMETRY,
    "triclinic": _LOW_SYMMETRY,
}

# --------------------------------------------------------------------------------------------
# SI Fig. S21: crystal system from XANES, PXRD and both
# --------------------------------------------------------------------------------------------

_S21 = "main text, discussion of SI Fig. S21"

#: Crystal-system accuracy per input (the modalities of
#: :data:`specfusion_lib.crystal_system.fusion.MODALITIES`).
FIG_S21_ACCURACY: dict[str, PaperValue] = {
    "XANES only": PaperValue("0.48", 0.48, _S21),
    "PXRD only": PaperValue("0.81", 0.81, _S21),
    "XANES + PXRD": PaperValue("0.66", 0.66, _S21),
}

# --------------------------------------------------------------------------------------------
# (task, metric) → value, as compared in notebook 02
# --------------------------------------------------------------------------------------------

_XANES_ONLY = FIG_S21_ACCURACY["XANES only"]

#: (task, metric) → the paper's value of the property models (Fig. 2c–g, S8; the XANES-only
#: crystal system of Fig. S21). Only numbers the paper states.
PROPERTY_VALUES: dict[tuple[str, str], PaperValue] = {
    **{(t, m): CLASSIFICATION_SCORE
       for t in CLASSIFICATION_TASKS for m in ("accuracy", "f1_macro")},
    ("formation_energy_per_atom", "mae"): ENERGY_MAE,
    ("efermi", "mae"): ENERGY_MAE,
    ("band_gap", "mae"): ENERGY_MAE,
    ("density", "mae"): DENSITY_MAE,
    ("crystal_system", "accuracy"): PaperValue(
        f"{_XANES_ONLY.text} (XANES only)", _XANES_ONLY.value,
        "main text, SI Fig. S21 (XANES-only input)"),
}

# --------------------------------------------------------------------------------------------
# Fig. 5b: structure inference
# --------------------------------------------------------------------------------------------

#: Top-1 accuracy of the (empirical formula, crystal system) prediction, binary to quinary.
FIG5B_TOP1 = PaperValue(
    "> 0.80", 0.80, "main text, Fig. 5b (held-out MP theoretical subset, 2–5 elements)",
    "lower")

# --------------------------------------------------------------------------------------------
# Fig. 6b: composite
# --------------------------------------------------------------------------------------------

#: Predicted band gap of the measured Cu2O/TiO2 composite (dominated by TiO2).
FIG6B_COMPOSITE_BAND_GAP = PaperValue("3.67 eV", 3.67, "main text, Fig. 6b")

# --------------------------------------------------------------------------------------------
# Table 1, SI Table S1: measured compounds
# --------------------------------------------------------------------------------------------

TABLE1_SOURCE = ("main text Table 1 (absolute errors, eV; density g/cm³) and SI Table S1 "
                 "(predicted / experimental values), Chem. Sci. 2026, "
                 "DOI 10.1039/d6sc00651e")

#: The paper's Table 1: absolute errors per compound and consistency of the structural
#: descriptors (✓ fully consistent, ✗ partly).
TABLE1: tuple[dict[str, Any], ...] = tuple(
    {"compound": c, "E_f": ef, "E_fermi": efe, "E_g": eg, "density": d,
     "valence_and_cn": v, "crystal_system": cs}
    for c, ef, efe, eg, d, v, cs in (
        ("TiFe2O5", 0.08, 1.06, 0.72, 0.53, "✓", "✓"),
        ("MnS", 0.03, 1.30, 1.27, 0.16, "✓", "✓"),
        ("ZnFe2O4", 0.10, 0.65, 0.64, 0.97, "✓", "✓"),
        ("CoFe2O4", 0.02, 1.26, 0.50, 1.37, "✓", "✓"),
        ("V2O5", 0.23, 1.06, 0.52, 0.45, "✓", "✓"),
        ("Co2O3", 0.21, 1.04, 0.39, 1.47, "✓", "✓"),
        ("Co3O4", 0.24, 0.72, 0.42, 1.21, "✗", "✓"),
    ))

#: Table 1: (compounds with oxidation states and CNs fully consistent, compounds).
TABLE1_VALENCE_AND_CN_CONSISTENT: tuple[int, int] = (
    sum(row["valence_and_cn"] == "✓" for row in TABLE1), len(TABLE1))
#: Table 1: (compounds with the crystal system right, compounds).
TABLE1_CRYSTAL_SYSTEM_CONSISTENT: tuple[int, int] = (
    sum(row["crystal_system"] == "✓" for row in TABLE1), len(TABLE1))

#: The paper's Table S1: (predicted, experimental) per property and compound.
TABLE_S1: dict[str, dict[str, tuple[str, str]]] = {
    "TiFe2O5": {"is band gap": ("Yes", "Yes"), "is magnetic": ("Yes", "Yes"),
                "band gap (eV)": ("1.33", "2.05"), "E_f (eV)": ("-2.26", "-2.34"),
                "Fermi level (eV)": ("3.76", "2.70"), "density (g/cm3)": ("4.73", "4.20"),
                "CNs": ("(6, 6)", "(6, 6)"), "states": ("(+3, +4)", "(+3, +4)"),
                "crystal system": ("Orth.", "Orth.")},
    "MnS": {"is band gap": ("Yes", "Yes"), "is magnetic": ("Yes", "No"),
            "band gap (eV)": ("1.04", "2.31"), "E_f (eV)": ("-1.16", "-1.13"),
            "Fermi level (eV)": ("4.45", "3.15"), "density (g/cm3)": ("3.53", "3.37"),
            "CNs": ("4", "4"), "states": ("+2", "+2"), "crystal system": ("Cubic", "Cubic")},
    "ZnFe2O4": {"is band gap": ("Yes", "Yes"), "is magnetic": ("Yes", "Yes"),
                "band gap (eV)": ("1.76", "2.40"), "E_f (eV)": ("-1.65", "-1.75"),
                "Fermi level (eV)": ("1.65", "2.30"), "density (g/cm3)": ("4.37", "5.34"),
                "CNs": ("(6, 6)", "(4, 6)"), "states": ("(+2, +3)", "(+2, +3)"),
                "crystal system": ("Cubic", "Cubic")},
    "CoFe2O4": {"is band gap": ("Yes", "Yes"), "is magnetic": ("Yes", "Yes"),
                "band gap (eV)": ("1.39", "1.89"), "E_f (eV)": ("-1.59", "-1.57"),
                "Fermi level (eV)": ("1.65", "2.91"), "density (g/cm3)": ("3.80", "5.17"),
                "CNs": ("(4, 6)", "(4, 6)"), "states": ("(+2, +3)", "(+2, +3)"),
                "crystal system": ("Cubic", "Cubic")},
    "V2O5": {"is band gap": ("Yes", "Yes"), "is magnetic": ("No", "No"),
             "band gap (eV)": ("1.75", "2.27"), "E_f (eV)": ("-2.06", "-2.29"),
             "Fermi level (eV)": ("-1.60", "-0.54"), "density (g/cm3)": ("2.99", "3.44"),
             "CNs": ("5", "5"), "states": ("+5", "+5"), "crystal system": ("Orth.", "Orth.")},
    "Co2O3": {"is band gap": ("Yes", "Yes"), "is magnetic": ("Yes", "No"),
              "band gap (eV)": ("1.26", "1.65"), "E_f (eV)": ("-1.14", "-0.93"),
              "Fermi level (eV)": ("3.00", "1.96"), "density (g/cm3)": ("3.40", "4.87"),
              "CNs": ("6", "6"), "states": ("+3", "+3"), "crystal system": ("Cubic", "Cubic")},
    "Co3O4": {"is band gap": ("Yes", "Yes"), "is magnetic": ("No", "No"),
              "band gap (eV)": ("1.78", "2.20"), "E_f (eV)": ("-1.04", "-1.28"),
              "Fermi level (eV)": ("2.44", "3.16"), "density (g/cm3)": ("4.31", "5.52"),
              "CNs": ("6", "(4, 6)"), "states": ("+3", "(+3, +2)"),
              "crystal system": ("Cubic", "Cubic")},
}

# --------------------------------------------------------------------------------------------
# XAStruct (seed 002) and CGXAS (seed 003): reference values of notebooks 13–15. Their data
# (Materials Project FEFF9 spectra, K and L edges, XANES and EXAFS, 70+ elements, random 8:2
# split) differ from ours, so these are references, not like-for-like numbers.
# --------------------------------------------------------------------------------------------

_XASTRUCT_T3 = "XAStruct Table 3 (validation set, K-edge XANES, all elements)"
#: XAStruct forward MAE on K-edge XANES per head variant (Table 3; "sgmlp" also Table 1).
XASTRUCT_FORWARD_MAE: dict[str, PaperValue] = {
    "sgmlp": PaperValue("0.0537 ± 0.0005", 0.0537, _XASTRUCT_T3),
    "relu": PaperValue("0.0612 ± 0.0006", 0.0612, _XASTRUCT_T3),
    "linear": PaperValue("0.0595 ± 0.0007", 0.0595, _XASTRUCT_T3),
    "mlp": PaperValue("0.0689 ± 0.0008", 0.0689, _XASTRUCT_T3),
}
_XASTRUCT_T2 = "XAStruct Table 2 (K-edge XAFS = XANES + EXAFS)"
#: XAStruct inverse results (Table 2): (target, model, metric) → value.
XASTRUCT_INVERSE: dict[tuple[str, str, str], PaperValue] = {
    ("mnnd", "XAStruct", "mae"): PaperValue("0.0350 ± 0.0007 Å", 0.0350, _XASTRUCT_T2),
    ("mnnd", "random forest", "mae"): PaperValue("0.0557 ± 0.0009 Å", 0.0557, _XASTRUCT_T2),
    ("cn", "XAStruct", "accuracy"): PaperValue("69.26 ± 0.02 %", 0.6926, _XASTRUCT_T2),
    ("cn", "MLP", "accuracy"): PaperValue("68.65 ± 0.03 %", 0.6865, _XASTRUCT_T2),
    ("cn", "XAStruct", "macro_f1"): PaperValue("61.35 ± 0.01 %", 0.6135, _XASTRUCT_T2),
    ("cn", "MLP", "macro_f1"): PaperValue("61.44 ± 0.02 %", 0.6144, _XASTRUCT_T2),
    ("neighbour_type", "XAStruct", "accuracy"): PaperValue("92.96 ± 0.02 %", 0.9296,
                                                           _XASTRUCT_T2),
    ("neighbour_type", "random forest", "accuracy"): PaperValue("88.99 ± 0.01 %", 0.8899,
                                                                _XASTRUCT_T2),
    ("neighbour_type", "XAStruct", "macro_f1"): PaperValue("88.76 ± 0.01 %", 0.8876,
                                                           _XASTRUCT_T2),
    ("neighbour_type", "random forest", "macro_f1"): PaperValue("82.23 ± 0.01 %", 0.8223,
                                                                _XASTRUCT_T2),
}
#: CGXAS universal model: mean relative square error on its test set (main text).
CGXAS_UNIVERSAL_RSE = PaperValue("0.020223", 0.020223, "CGXAS main text, Fig. 2b")
_CGXAS_5B = ("CGXAS Fig. 5b and main text (S, Ti, Fe K edges; 48/40/45 measured spectra per "
             "element, 20 random 6:1:1 splits)")
#: CGXAS calibration: mean edge-energy error (eV) before and after transfer learning, and the
#: relative reduction.
CGXAS_EDGE_ERROR: dict[str, PaperValue] = {
    "before": PaperValue("~4 eV", 4.0, _CGXAS_5B),
    "after": PaperValue("~1.8 eV", 1.8, _CGXAS_5B),
    "reduction": PaperValue("~55 %", 0.55, _CGXAS_5B),
}
