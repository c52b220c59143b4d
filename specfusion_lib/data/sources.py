"""Open the snapshot a notebook asks for, building it first when asked to.

Notebooks take a ``data`` parameter (a snapshot folder). :func:`open_snapshot` loads and
verifies it; when the folder is missing it either builds it (``build_if_missing="fixture"``
or ``"mp"``) or raises a :class:`~specfusion_lib.core.errors.SnapshotError` that says how to get
one. :func:`snapshot_overview` turns a manifest into the tables notebook 00 shows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from specfusion_lib.core.errors import ConfigurationError, SnapshotError
from specfusion_lib.core.tasks import TASKS
from specfusion_lib.data.snapshot import LABEL_FIELDS, Snapshot, load_snapshot

__all__ = ["BUILDERS", "open_snapshot", "snapshot_overview"]

#: Ways a missing snapshot can be built: name → one-line description.
BUILDERS = {
    "fixture": "the small test snapshot, simulated with FEFF10 (a few minutes)",
    "mp": "download from the Materials Project (needs MP_API_KEY; hours for the full set)",
}


def open_snapshot(data: str | os.PathLike[str], *, build_if_missing: str | None = None,
                  verify: bool = True) -> Snapshot:
    """Load the snapshot at ``data``, building it first if missing and asked to.

    Args:
        data: Snapshot folder.
        build_if_missing: ``None`` (fail when missing), ``"fixture"`` or ``"mp"``.
        verify: Verify checksums while loading.

    Raises:
        SnapshotError: The folder is missing and no builder was requested, or it is invalid.
        ConfigurationError: Unknown builder name.
    """
    path = Path(data)
    if not (path / "manifest.json").is_file():
        if build_if_missing is None:
            raise SnapshotError(
                f"{path}: no snapshot here. Build one with `specfusion data build-fixture "
                f"--out {path}`, download one with `specfusion data fetch-mp --out {path}`, "
                "or pass another folder as the `data` parameter.")
        if build_if_missing == "fixture":
            from specfusion_lib.data.fixture import build_fixture_snapshot

            build_fixture_snapshot(path)
        elif build_if_missing == "mp":
            from specfusion_lib.data.mp import fetch_mp_snapshot

            fetch_mp_snapshot(path)
        else:
            raise ConfigurationError(
                f"unknown builder {build_if_missing!r}; choose one of {sorted(BUILDERS)}")
    return load_snapshot(path, verify=verify)


def snapshot_overview(snapshot: Snapshot) -> dict[str, Any]:
    """Tables describing a snapshot, for notebook 00.

    Returns:
        dict with ``header`` (str), ``software`` (DataFrame of package versions),
        ``label_sources`` (DataFrame: label → where its values come from, or "absent"),
        ``counts`` (DataFrame of quantity → value) and ``tasks`` (DataFrame: each task,
        how many materials carry its label, or "not available in this snapshot").
    """
    manifest = snapshot.manifest
    header = "\n".join([
        f"snapshot   {snapshot.path}",
        f"source     {manifest.get('source')}",
        f"created    {manifest.get('created')}",
        f"id         {manifest.get('snapshot_id')}",
        f"about      {manifest.get('description', '')}",
    ])
    software = pd.DataFrame(sorted(manifest.get("software", {}).items()),
                            columns=["package", "version"])
    present = manifest["counts"]["labels_present"]
    sources = manifest.get("label_sources", {})
    label_sources = pd.DataFrame([
        {"label": name, "materials": present.get(name, 0),
         "source": sources.get(name, "—") if present.get(name, 0) else "absent"}
        for name in LABEL_FIELDS
    ])
    rows = [("materials", manifest["counts"]["materials"]),
            ("spectra", manifest["counts"]["spectra"])]
    rows += [(f"spectra {key}", n) for key, n in manifest["counts"]["spectra_by_edge"].items()]
    rows += [(f"label {name}", n) for name, n in present.items()]
    counts = pd.DataFrame(rows, columns=["quantity", "value"])
    tasks = pd.DataFrame([
        {"task": name, "kind": task.kind,
         "materials with label": int(task.labels(snapshot.materials).notna().sum()),
         "status": "available" if task.available(snapshot.materials)
         else "not available in this snapshot"}
        for name, task in TASKS.items()
    ])
    return {"header": header, "software": software, "label_sources": label_sources,
            "counts": counts, "tasks": tasks}
