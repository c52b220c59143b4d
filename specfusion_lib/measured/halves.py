"""Development and scoring halves of the measured compounds (choices on one, targets on the other).

Every choice that makes simulated spectra look measured (FEFF preset, post-broadening, the
domain randomisation of training, the edge-offset input) is made by looking at measured
spectra. If the same measured spectra then scored the models, the score would be tuned on its
own test set. The measured transition-metal compounds of ``experiment.csv``
(:mod:`specfusion_lib.data.measured`) are therefore split once, and the split is committed in
``data/measured_halves.json``:

* the **development half**: looked at for every choice;
* the **scoring half**: held out of training and of every choice; the targets are scored on it.

Rule (:func:`split_compounds`): the unit is the *compound* (reduced formula), so the two
measurements of V2O5 from two collections stay on one side. Compounds are grouped by
absorbing element; inside an element they are put in a seeded order (SHA-256 of
``"<seed>:<formula>"``, so adding a compound later does not reshuffle the others) and dealt
alternately, the first to the half that is smaller so far (development on ties). Elements are
taken in order of decreasing compound count, then symbol, so single-compound elements
(Co, Cu, Zn, Cd) alternate between the halves.

:func:`load_halves` reads the committed file and checks it against the records it is used
with: a measured TM compound in neither half, or a compound in both, is an error that names
the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from specfusion_lib.core.errors import InputFileError
from specfusion_lib.data.measured import MeasuredRecord

__all__ = [
    "DEFAULT_HALVES_PATH",
    "HALVES",
    "MeasuredHalves",
    "load_halves",
    "split_compounds",
    "write_halves",
]

#: The committed split (``<repository>/data/measured_halves.json``).
DEFAULT_HALVES_PATH: Path = Path(__file__).resolve().parents[2] / "data" / "measured_halves.json"
#: Names of the two halves.
HALVES: tuple[str, str] = ("development", "scoring")


@dataclass(frozen=True)
class MeasuredHalves:
    """The two halves of the measured compounds.

    Attributes:
        development: Reduced formulas looked at for every choice.
        scoring: Reduced formulas the targets are scored on.
        seed: Seed of the order inside an element.
        elements: Formula → absorbing element.
    """

    development: tuple[str, ...]
    scoring: tuple[str, ...]
    seed: int
    elements: dict[str, str]

    def half_of(self, formula: str) -> str:
        """``"development"`` or ``"scoring"`` for a compound.

        Raises:
            KeyError: The compound is in neither half.
        """
        if formula in self.development:
            return "development"
        if formula in self.scoring:
            return "scoring"
        raise KeyError(formula)

    def as_dict(self) -> dict[str, object]:
        """JSON-ready content of ``data/measured_halves.json``."""
        return {
            "rule": "by compound (reduced formula), stratified by absorbing element; "
                    "seeded order inside an element, dealt alternately "
                    "(specfusion_lib.measured.halves.split_compounds)",
            "seed": self.seed,
            "development": sorted(self.development),
            "scoring": sorted(self.scoring),
            "elements": dict(sorted(self.elements.items())),
        }


def _rank(seed: int, formula: str) -> str:
    return hashlib.sha256(f"{seed}:{formula}".encode()).hexdigest()


def _tm_compounds(records: Iterable[MeasuredRecord]) -> dict[str, str]:
    compounds: dict[str, str] = {}
    for record in records:
        if record.is_transition_metal:
            compounds.setdefault(record.formula, record.element)
    return compounds


def split_compounds(records: Sequence[MeasuredRecord], seed: int = 0) -> MeasuredHalves:
    """Split the measured TM compounds into a development and a scoring half.

    Args:
        records: Measured records (:func:`~specfusion_lib.data.measured.read_measured_xanes`);
            non-TM records are ignored.
        seed: Seed of the order inside an element.

    Returns:
        The two halves (see the module docstring for the rule).
    """
    compounds = _tm_compounds(records)
    by_element: dict[str, list[str]] = defaultdict(list)
    for formula, element in compounds.items():
        by_element[element].append(formula)
    halves: dict[str, list[str]] = {name: [] for name in HALVES}
    for element in sorted(by_element, key=lambda e: (-len(by_element[e]), e)):
        ordered = sorted(by_element[element], key=lambda f: _rank(seed, f))
        for formula in ordered:
            target = min(HALVES, key=lambda h: (len(halves[h]), HALVES.index(h)))
            halves[target].append(formula)
    return MeasuredHalves(tuple(sorted(halves["development"])), tuple(sorted(halves["scoring"])),
                          seed, dict(compounds))


def write_halves(halves: MeasuredHalves,
                 path: str | os.PathLike[str] = DEFAULT_HALVES_PATH) -> Path:
    """Write the split as JSON (atomically: temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(halves.as_dict(), indent=1) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def load_halves(records: Sequence[MeasuredRecord] | None = None,
                path: str | os.PathLike[str] = DEFAULT_HALVES_PATH) -> MeasuredHalves:
    """Read the committed split and check it against ``records``.

    Args:
        records: Measured records the split will be used with; every TM compound among them
            must be in exactly one half. ``None``: no check.
        path: The split file.

    Returns:
        The halves.

    Raises:
        InputFileError: The file is missing or malformed, a compound is in both halves, or a
            measured TM compound is in neither.
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        development = tuple(str(f) for f in raw["development"])
        scoring = tuple(str(f) for f in raw["scoring"])
        seed = int(raw["seed"])
        elements = {str(k): str(v) for k, v in raw["elements"].items()}
    except FileNotFoundError as exc:
        raise InputFileError(f"{path}: the measured-compound halves file is missing") from exc
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise InputFileError(f"{path}: not a measured-halves file ({exc})") from exc
    both = sorted(set(development) & set(scoring))
    if both:
        raise InputFileError(f"{path}: compounds in both halves: {', '.join(both)}")
    if records is not None:
        missing = sorted(set(_tm_compounds(records)) - set(development) - set(scoring))
        if missing:
            raise InputFileError(
                f"{path}: measured TM compounds in neither half: {', '.join(missing)} "
                "(the measured file changed; split again with split_compounds and commit)"
            )
    return MeasuredHalves(development, scoring, seed, elements)
