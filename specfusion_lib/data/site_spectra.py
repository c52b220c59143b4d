"""Per-site spectra of a snapshot, read back from the FEFF cache that built it.

A snapshot's spectra table holds one spectrum per (material, absorbing element, edge): the
multiplicity-weighted average over the element's inequivalent sites. The site spectra behind
each average are still in the build's FEFF cache (:mod:`specfusion_lib.simulate.cache`);
models that predict one spectrum per site (CGXAS, :mod:`specfusion_lib.xas_structure.cgxas`)
train on them. :func:`collect_site_spectra` re-plans the build's site jobs for every
simulated spectrum of the snapshot (same structure, element, edge and preset, hence the same
cache keys), reads the entries and keeps a group only when its sites' average reproduces the
snapshot's spectrum (so the supplement never disagrees with the table it explains);
:func:`attach_site_spectra` stores the rows as the snapshot's ``site_spectra.parquet``
supplement (:func:`specfusion_lib.data.snapshot.write_site_spectra`).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from specfusion_lib.core.errors import SnapshotError
from specfusion_lib.data.snapshot import Snapshot, write_site_spectra

__all__ = ["SiteSpectraReport", "attach_site_spectra", "collect_site_spectra"]

logger = logging.getLogger(__name__)

#: Largest |average of the sites − snapshot spectrum| (relative to the spectrum's maximum)
#: for a group to be kept.
AVERAGE_TOLERANCE = 1e-6


@dataclass
class SiteSpectraReport:
    """What :func:`collect_site_spectra` found.

    Attributes:
        groups: Simulated (material, element, edge) spectra of the snapshot looked at.
        kept: Groups whose every site was found and whose average matches.
        missing: Group → reason, for the groups left out.
    """

    groups: int = 0
    kept: int = 0
    missing: dict[tuple[str, str, str], str] = field(default_factory=dict)

    def summary(self) -> str:
        """One line for logs and notes."""
        return (f"{self.kept} of {self.groups} simulated spectra resolved into site spectra; "
                f"{len(self.missing)} left out")


def _preset_of(source: str) -> str | None:
    kind, _, preset = str(source).partition(":")
    return preset if kind == "feff10" and preset else None


def collect_site_spectra(snapshot: Snapshot, cache_dir: str | os.PathLike[str], *,
                         progress: bool = False) -> tuple[pd.DataFrame, SiteSpectraReport]:
    """The site spectra of every FEFF10 spectrum of ``snapshot`` found in ``cache_dir``.

    Args:
        snapshot: The snapshot.
        cache_dir: The FEFF cache its spectra were built into (e.g. ``data/demo_build/feff``).
        progress: Show progress bars.

    Returns:
        Rows with :data:`~specfusion_lib.data.snapshot.SITE_SPECTRA_COLUMNS` and the report.

    Raises:
        SnapshotError: ``cache_dir`` is not a folder.
    """
    from specfusion_lib.simulate.cache import SpectrumCache
    from specfusion_lib.simulate.runner import assemble_spectra, plan_jobs

    root = Path(cache_dir)
    if not root.is_dir():
        raise SnapshotError(f"{root}: no FEFF cache folder here")
    cache = SpectrumCache(root)
    spectra = snapshot.spectra
    report = SiteSpectraReport()
    rows: list[dict] = []
    by_preset: dict[str, dict[str, list[str]]] = {}
    reference: dict[tuple[str, str, str], np.ndarray] = {}
    for row in spectra.itertuples(index=False):
        preset = _preset_of(row.source)
        if preset is None:
            continue
        by_preset.setdefault(preset, {}).setdefault(str(row.material_id), []).append(
            str(row.element))
        reference[(str(row.material_id), str(row.element), str(row.edge))] = row.mu
    report.groups = len(reference)
    for preset, plan in by_preset.items():
        structures = {mid: snapshot.structure(mid) for mid in plan}
        jobs = plan_jobs(structures, plan, edge="K", preset=preset, progress=progress)
        assembled = assemble_spectra(jobs, cache, warn=False)
        report.missing.update(assembled.incomplete)
        for group, simulated in assembled.items():
            expected = reference.get(group)
            if expected is None:
                continue
            if len(expected) != len(simulated.mu) or not np.allclose(
                    simulated.mu, expected, rtol=0,
                    atol=AVERAGE_TOLERANCE * max(np.abs(expected).max(), 1e-12)):
                report.missing[group] = ("the average of the cached site spectra differs "
                                         "from the snapshot's spectrum")
                continue
            report.kept += 1
            for site in simulated.sites:
                rows.append({"material_id": group[0], "element": group[1], "edge": group[2],
                             "site_index": int(site.site_index),
                             "multiplicity": int(site.multiplicity),
                             "source": f"feff10:{preset}", "energy": np.asarray(site.energy),
                             "mu": np.asarray(site.mu)})
    logger.info("%s: %s", snapshot.path, report.summary())
    columns = ["material_id", "element", "edge", "site_index", "multiplicity", "source",
               "energy", "mu"]
    return pd.DataFrame(rows, columns=columns), report


def attach_site_spectra(snapshot: Snapshot, cache_dir: str | os.PathLike[str], *,
                        progress: bool = False) -> SiteSpectraReport:
    """Collect the site spectra of ``snapshot`` and store them as its supplement.

    Returns:
        The report of :func:`collect_site_spectra`.
    """
    rows, report = collect_site_spectra(snapshot, cache_dir, progress=progress)
    write_site_spectra(snapshot.path, rows,
                       description=f"FEFF10 site spectra read from the build cache "
                                   f"({Path(cache_dir).as_posix()}); {report.summary()}")
    return report
