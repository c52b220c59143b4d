"""Run profiles shared by every notebook and the CLI (SPEC §2).

``smoke``
    Seconds per notebook; the test suite executes every notebook with it.
``quick``
    The default of ``run_all.sh``: the embedded demo snapshot, one seed, capped epochs, at
    most 600 materials per XANES model (150 per ablation run) and every pattern for the PXRD
    classifier (its measured wall time is stated once, in the README's profile table).
    Capping the PXRD classifier at 2,000 patterns saved 2.4 minutes but cost 0.08 of its
    test accuracy, so it is not capped.
``paper``
    The SI §S1.1 protocol: 70/15/15 split, Adam (lr 1e-3), up to 300 epochs, early stopping
    with patience 20, five seeds reported as mean ± std; CUDA when present.
"""

from __future__ import annotations

from dataclasses import dataclass

from specfusion_lib.core.errors import ConfigurationError

__all__ = ["PROFILES", "SPLIT_METHODS", "Profile", "get_profile"]

#: How a trainer splits: by structure family (default) or by material (random).
SPLIT_METHODS: tuple[str, ...] = ("family", "random")


@dataclass(frozen=True)
class Profile:
    """Settings a notebook reads from its profile.

    Attributes:
        name: Profile name.
        seeds: Random seeds; one model per seed, metrics reported as mean ± std.
        max_epochs: Upper bound on training epochs.
        patience: Early-stopping patience in epochs (validation loss).
        max_materials: Cap on the materials of a XANES model (SpecFusionNet, multi-task, the
            XANES and fused crystal-system models); a seeded subset (None: all).
        max_pxrd_materials: Cap on the materials of the PXRD-only crystal-system classifier
            (notebooks 07 and 09; None: all).
        ablation_max_materials: Cap on the materials of each ablation run (notebook 05
            retrains the model 14 times per task; None: ``max_materials``). Never raises
            ``max_materials``.
        split: Train / validation / test fractions.
        split_by: ``"family"`` (default: whole structure families go to one part, see
            :mod:`specfusion_lib.data.families`) or ``"random"`` (a permutation of the
            materials, the paper's protocol; substitution siblings then sit on both sides).
        learning_rate: Adam learning rate.
        batch_size: Mini-batch size.
        min_patterns_per_epoch: PXRD models only: when the training part is smaller, each
            epoch draws several freshly augmented copies of every training pattern (see
            :func:`specfusion_lib.crystal_system.training.epoch_copies`), so that a small snapshot
            still gets enough optimiser steps per epoch for early stopping to judge; 0 turns it off.
        notebook_budgets: ``(("07", 330), ...)``: wall-time budget in seconds of each
            notebook (by its two-digit prefix) on the reference machine (2 CPU cores);
            ``run_all.sh`` prints the measured time beside it and flags overruns. Empty: no
            budget.
    """

    name: str
    seeds: tuple[int, ...]
    max_epochs: int
    patience: int
    max_materials: int | None
    max_pxrd_materials: int | None = None
    ablation_max_materials: int | None = None
    split: tuple[float, float, float] = (0.70, 0.15, 0.15)
    split_by: str = "family"
    learning_rate: float = 1e-3
    batch_size: int = 64
    min_patterns_per_epoch: int = 0
    notebook_budgets: tuple[tuple[str, int], ...] = ()

    def budget_s(self, notebook: str) -> int | None:
        """Budget in seconds of a notebook (file name or two-digit prefix), ``None`` if none."""
        prefix = str(notebook)[:2]
        return dict(self.notebook_budgets).get(prefix)

    def __post_init__(self) -> None:
        if self.split_by not in SPLIT_METHODS:
            raise ConfigurationError(f"split_by must be one of {SPLIT_METHODS}, "
                                     f"got {self.split_by!r}")


#: Wall-time budgets of the quick profile's notebooks (seconds, 2 CPU cores): the times of a
#: full run on an idle 2-core machine from empty ``build/`` (2026-12-05, README profile table)
#: plus ~10 %; 07 from the 2026-12-06 run (5m43s on a machine 20-30 % slower than the day before;
#: its PXRD CNN now trains on two threads). Sum 2,173 s: 36 min against the 30-minute target,
#: which the README states; 07 (PXRD classifiers) and 09 (structure-inference benchmark, ~9 min
#: with its searches in one process per CPU) are the largest.
QUICK_BUDGETS_S: tuple[tuple[str, int], ...] = (
    ("00", 10), ("01", 20), ("02", 150), ("03", 120), ("04", 90), ("05", 90), ("06", 25),
    ("07", 380), ("08", 100), ("09", 590), ("10", 115), ("11", 160), ("12", 18),
    ("13", 70), ("14", 65), ("15", 170))

PROFILES: dict[str, Profile] = {
    "smoke": Profile("smoke", seeds=(0,), max_epochs=2, patience=2, max_materials=64,
                     max_pxrd_materials=64),
    "quick": Profile("quick", seeds=(0,), max_epochs=40, patience=10, max_materials=600,
                     max_pxrd_materials=None, ablation_max_materials=150,
                     min_patterns_per_epoch=1024, notebook_budgets=QUICK_BUDGETS_S),
    "paper": Profile("paper", seeds=(0, 1, 2, 3, 4), max_epochs=300, patience=20,
                     max_materials=None, min_patterns_per_epoch=1024),
}


def get_profile(name: str) -> Profile:
    """Return the profile called ``name``.

    Raises:
        ConfigurationError: For an unknown profile name.
    """
    try:
        return PROFILES[name]
    except KeyError:
        raise ConfigurationError(
            f"unknown profile {name!r}; choose one of {sorted(PROFILES)}"
        ) from None
