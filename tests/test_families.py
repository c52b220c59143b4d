"""Structure families and the family split (no family on two sides of a split)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from specfusion_lib.core.errors import ConfigurationError
from specfusion_lib.core.profiles import get_profile
from specfusion_lib.data.families import (
    demo_pool_parents,
    family_groups,
    snapshot_families,
    structure_family_key,
)
from specfusion_lib.data.snapshot import load_snapshot
from specfusion_lib.inference.benchmark import crystal_system_split
from specfusion_lib.training.splits import split_groups, split_indices

ROOT = Path(__file__).resolve().parents[1]


def _rock_salt(a: str, b: str, lattice: float) -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(lattice), [a, b],
                                     [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_structural_key_is_anonymous_formula_and_space_group():
    assert structure_family_key(_rock_salt("Na", "Cl", 5.64)) == "AB_225"
    assert structure_family_key(_rock_salt("Mg", "O", 4.21)) == "AB_225"
    cscl = Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    assert structure_family_key(cscl) == "AB_221"


def test_family_groups_join_shared_keys_and_shared_parents():
    ids = ["a", "b", "c", "d", "e"]
    keys = ["AB_225", "AB_225", "AB2_12", "AB2_15", "ABC3_221"]
    families = family_groups(ids, keys, {"c": "proto-x", "d": "proto-x"})
    assert families["a"] == families["b"] == "AB_225"
    assert families["c"] == families["d"] == "AB2_12"  # joined by the parent, smallest key
    assert families["e"] == "ABC3_221"
    assert family_groups(ids, keys)["c"] != family_groups(ids, keys)["d"]


def test_split_groups_policy_and_fallbacks():
    fam = ["x", "x", "y", "z", "z"]
    assert split_groups("random", fam, 5) == (None, "random")
    assert split_groups("family", fam, 5) == (fam, "family")
    assert split_groups("family", None, 5) == (None, "random (no families)")
    assert split_groups("family", ["x", "y", "x"], 3) == (None, "random (only 2 families)")
    with pytest.raises(ConfigurationError):
        split_groups("family", fam, 4)
    with pytest.raises(ConfigurationError):
        split_groups("scaffold", fam, 5)
    assert get_profile("quick").split_by == "family"
    with pytest.raises(ConfigurationError):
        replace(get_profile("quick"), split_by="by-element")


@pytest.fixture(scope="module")
def demo_families():
    snapshot = load_snapshot(ROOT / "data" / "demo")
    return snapshot, snapshot_families(snapshot)


def test_demo_family_split_keeps_families_and_prototypes_apart(demo_families):
    snapshot, families = demo_families
    ids = [str(m) for m in snapshot.materials["material_id"]]
    groups = [families[m] for m in ids]
    parents = demo_pool_parents(ROOT / "data" / "demo_build" / "pool" / "candidates.json.gz")
    assert 30 <= len(set(groups)) < len(ids)
    for seed in range(3):
        parts = split_indices(len(ids), (0.70, 0.15, 0.15), seed, groups=groups)
        keys = [{groups[i] for i in part} for part in parts]
        protos = [{parents[ids[i]] for i in part} for part in parts]
        for a in range(3):
            for b in range(a + 1, 3):
                assert not keys[a] & keys[b]
                assert not protos[a] & protos[b]
        # the random split of the same rows does put siblings on both sides
    random_parts = split_indices(len(ids), (0.70, 0.15, 0.15), 0)
    train_protos = {parents[ids[i]] for i in random_parts[0]}
    assert np.mean([parents[ids[i]] in train_protos for i in random_parts[2]]) > 0.9


def test_benchmark_split_bans_the_test_compounds_families():
    ids = [f"m{i}" for i in range(12)]
    fam = ["f0", "f0", "f1", "f1", "f2", "f2", "f3", "f3", "f4", "f4", "f5", "f5"]
    train, val, test = crystal_system_split(ids, ["m0", "m2"], seed=1, families=fam)
    assert list(test) == [0, 2]
    used = {fam[i] for i in (*train, *val)}
    assert not used & {"f0", "f1"}
    assert not {fam[i] for i in train} & {fam[i] for i in val}
    assert len(train) + len(val) == 8
