"""Train / validation / test splits and the seeded material cap of the profiles (SI §S1.1).

* :func:`split_indices`: the 70 / 15 / 15 % split of the paper, by a seeded permutation of
  the rows, or -- with ``groups`` -- of whole groups, so that no group (e.g. a structure
  family) has members in two parts.
* :func:`split_groups`: the group keys a profile's ``split_by`` asks for (the structure
  families of :mod:`specfusion_lib.data.families`, or none for a random split).
* :func:`resolve_split`: the split a trainer uses (given explicitly, else drawn), checked.
* :func:`split_ids`: the material ids of each part, as stored in checkpoints.
* :func:`capped_rows`: the seeded subset a profile's material cap keeps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Sequence

import numpy as np

from specfusion_lib.core.errors import ConfigurationError

__all__ = ["SUBSET_SEED", "capped_rows", "resolve_split", "split_groups", "split_ids",
           "split_indices"]

logger = logging.getLogger(__name__)

#: Seed of the material-cap subset (the same for every training seed).
SUBSET_SEED = 0

PART_NAMES = ("train", "val", "test")


def _check_fractions(fractions: Sequence[float]) -> None:
    if len(fractions) != 3 or any(f < 0 for f in fractions) or not math.isclose(
            sum(fractions), 1.0, abs_tol=1e-6):
        raise ConfigurationError(f"split fractions must be three non-negative numbers summing "
                                 f"to 1, got {tuple(fractions)}")


def _part_sizes(n: int, fractions: Sequence[float]) -> tuple[int, int]:
    """``(n_val, n_test)``: ``round(fraction · n)`` each, at least 1, leaving training rows."""
    n_val = max(1, int(round(fractions[1] * n)))
    n_test = max(1, int(round(fractions[2] * n)))
    if n - n_val - n_test < 1:
        n_val, n_test = 1, 1
    return n_val, n_test


def split_indices(n: int, fractions: Sequence[float] = (0.70, 0.15, 0.15), seed: int = 0, *,
                  groups: Sequence[Hashable] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into train / validation / test indices.

    Without ``groups``: a permutation of the rows (``numpy.random.default_rng(seed)``); test
    and validation get ``round(fraction · n)`` rows each, at least one, the rest is training.

    With ``groups`` (one key per row, e.g. a structure family): the distinct keys, sorted, are
    permuted with the same generator and whole groups are dealt to the test part until it
    holds at least its share of rows, then to the validation part, the rest to training. No
    key has rows in two parts; part sizes follow the fractions up to one group.

    Args:
        n: Number of rows (at least 3).
        fractions: Train, validation and test fractions (summing to 1).
        seed: Seed of the permutation.
        groups: Optional group key of every row, length ``n`` (at least 3 distinct keys).

    Returns:
        ``(train, val, test)`` sorted index arrays.

    Raises:
        ConfigurationError: For fewer than 3 rows (or groups), invalid fractions, or
            ``groups`` of the wrong length.
    """
    _check_fractions(fractions)
    if n < 3:
        raise ConfigurationError(f"too few labelled materials ({n}) for a train/validation/"
                                 "test split; at least 3 are needed")
    n_val, n_test = _part_sizes(n, fractions)
    rng = np.random.default_rng(seed)
    if groups is None:
        perm = rng.permutation(n)
        test = np.sort(perm[:n_test])
        val = np.sort(perm[n_test:n_test + n_val])
        train = np.sort(perm[n_test + n_val:])
        return train, val, test
    keys = [str(g) for g in groups]
    if len(keys) != n:
        raise ConfigurationError(f"groups has {len(keys)} entries for {n} rows")
    distinct = sorted(set(keys))
    if len(distinct) < 3:
        raise ConfigurationError(f"too few groups ({len(distinct)}) for a train/validation/"
                                 "test split by group; at least 3 are needed")
    members: dict[str, list[int]] = {k: [] for k in distinct}
    for i, k in enumerate(keys):
        members[k].append(i)
    order = [distinct[i] for i in rng.permutation(len(distinct))]
    parts: list[list[int]] = [[], [], []]  # test, val, train
    targets = (n_test, n_val)
    part = 0
    for j, key in enumerate(order):
        left = len(order) - j
        # move on once a part is full, but keep at least one group for each later part
        while part < 2 and (len(parts[part]) >= targets[part] or left <= 2 - part):
            if not parts[part]:
                break
            part += 1
        parts[part].extend(members[key])
    test, val, train = (np.sort(np.asarray(p, dtype=np.int64)) for p in parts)
    return train, val, test


def split_groups(split_by: str, families: Sequence[str] | None, n: int
                 ) -> tuple[Sequence[str] | None, str]:
    """Group keys for :func:`split_indices` and the name of the split they give.

    Args:
        split_by: ``"family"`` or ``"random"`` (a profile's ``split_by``).
        families: Family of every row, or ``None`` when the data carry none (synthetic data).
        n: Number of rows.

    Returns:
        ``(groups, method)``: ``(families, "family")``; ``(None, "random")`` for a random
        split; ``(None, "random (no families)")`` when a family split was asked for but the
        data carry no families, ``(None, "random (only k families)")`` for fewer than three
        (both logged), so that the checkpoint says what was done.

    Raises:
        ConfigurationError: For an unknown ``split_by`` or families of the wrong length.
    """
    if split_by not in ("family", "random"):
        raise ConfigurationError(f"split_by must be 'family' or 'random', got {split_by!r}")
    if split_by == "random":
        return None, "random"
    if families is None:
        logger.warning("family split asked for, but the data carry no structure families: "
                       "splitting at random")
        return None, "random (no families)"
    if len(families) != n:
        raise ConfigurationError(f"{len(families)} families for {n} rows")
    distinct = len(set(map(str, families)))
    if distinct < 3:
        logger.warning("family split asked for, but the %d materials fall into %d structure "
                       "families (3 are needed): splitting at random", n, distinct)
        return None, f"random (only {distinct} families)"
    return list(families), "family"


def resolve_split(n: int, fractions: Sequence[float], seed: int,
                  split: Sequence[Sequence[int]] | None = None, *,
                  groups: Sequence[Hashable] | None = None) -> tuple[np.ndarray, ...]:
    """``(train, val, test)`` row indices: ``split`` as given, else :func:`split_indices`.

    Raises:
        ConfigurationError: If the training or validation part is empty.
    """
    if split is None:
        parts = split_indices(n, fractions, seed, groups=groups)
    else:
        parts = tuple(np.asarray(s, dtype=np.int64) for s in split)
    if len(parts) != 3 or len(parts[0]) == 0 or len(parts[1]) == 0:
        raise ConfigurationError("the training and validation parts must not be empty")
    return tuple(parts)


def split_ids(material_ids: Sequence[str], parts: Sequence[Sequence[int]]
              ) -> dict[str, list[str]]:
    """``{"train": ids, "val": ids, "test": ids}`` of row-index parts."""
    return {name: [material_ids[i] for i in part]
            for name, part in zip(PART_NAMES, parts, strict=True)}


def capped_rows(material_ids: Sequence[str], cap: int, keep_ids: Sequence[str] = ()
                ) -> np.ndarray:
    """Rows of the seeded subset of ``cap`` materials that a profile's material cap keeps.

    The one subset rule of every trainer (``max_materials``, ``max_pxrd_materials``): the ids
    of ``keep_ids`` present come first (all of them, even beyond ``cap``); the remaining places
    are drawn without replacement from the other rows with seed :data:`SUBSET_SEED`, the same
    for every training seed, so the same snapshot and cap always give the same subset.

    Returns:
        Sorted row indices, shape ``(min(cap, n) or more,)``.
    """
    wanted = set(map(str, keep_ids))
    must = np.array([i for i, m in enumerate(material_ids) if str(m) in wanted], dtype=np.int64)
    rest = np.array([i for i, m in enumerate(material_ids) if str(m) not in wanted],
                    dtype=np.int64)
    n_draw = max(0, min(int(cap) - len(must), len(rest)))
    drawn = np.random.default_rng(SUBSET_SEED).choice(rest, n_draw, replace=False) \
        if n_draw else np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate([must, drawn]).astype(np.int64))
