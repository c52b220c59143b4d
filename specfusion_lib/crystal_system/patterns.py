"""Simulated powder patterns of a snapshot's structures, cached once, rendered per epoch.

The crystal-system classifier (main text Fig. 4d, SI Fig. S18) learns from simulated patterns
made realistic by peak broadening, noise and background. Simulating every structure with
pymatgen is the slow part (tens of structures per second), the rest is cheap, so:

1. **Sticks, once** (:func:`simulate_sticks`): the reflections of every structure (positions in
   2θ and integrated intensities, :func:`specfusion_lib.spectra.pxrd.simulate_peaks`, Cu Kα, the
   grid range plus :data:`~specfusion_lib.spectra.pxrd.PEAK_MARGIN_DEG` on both sides) are
   computed once and cached in one ``.npz`` per snapshot id and settings
   (``<cache_dir>/pxrd-sticks-<snapshot id>-<settings hash>.npz``, written atomically).
   Structures pymatgen cannot handle are listed in :attr:`StickPatterns.skipped` with the
   reason, never silently dropped.
2. **Patterns, whenever needed** (:meth:`StickPatterns.render`), vectorised over a batch, with
   random perturbations drawn from a seeded generator according to
   :class:`PatternConditions`:

   a. *preferred orientation*: each reflection's intensity is multiplied by an independent
      log-normal factor exp(s·z − s²/2), z ~ N(0, 1), s = ``peak_jitter``;
   b. *zero shift*: all reflections move by δ ~ U(−``zero_shift_deg``, +``zero_shift_deg``);
   c. *Voigt broadening*: the sticks are deposited on an extended 2θ grid (each stick split
      linearly between its two neighbouring grid points, which conserves its area and
      centroid) and convolved (FFT) with an area-normalised Voigt kernel
      V(x; σ, γ) (:func:`scipy.special.voigt_profile`, ±:data:`KERNEL_HALF_WIDTH_DEG`),
      σ = FWHM_G / (2√(2 ln 2)), γ = FWHM_L / 2, the two FWHMs drawn uniformly from the
      ``fwhm_gauss`` / ``fwhm_lorentz`` ranges per pattern (peak-width augmentation). The
      linear split broadens like a triangle of variance step²/6, which is subtracted from σ².
      The result is cropped to the grid and scaled to a maximum of 1. With the default widths
      and no perturbation this is :func:`~specfusion_lib.spectra.pxrd.simulate_pattern`'s
      pattern (agreeing within 1 % of the strongest peak, tested), about 30 times faster;
   d. *texture, background, noise*: :func:`specfusion_lib.spectra.pxrd.augment_pattern`
      (smooth multiplicative modulation of strength ``texture``, random background up to
      ``background``, Gaussian noise with σ drawn from ``noise_level``), then rescaled to a
      maximum of 1.

   Training draws new perturbations every epoch (:data:`TRAINING_CONDITIONS`), so the network
   never sees the same noisy copy twice; validation and test patterns are rendered once with
   a fixed seed under :data:`MEASUREMENT_CONDITIONS` (the simulator's default widths and
   perturbation amplitudes: a laboratory pattern with 2 % noise).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import io
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pymatgen.core import Structure
from scipy.fft import irfft, next_fast_len, rfft
from scipy.special import voigt_profile
from tqdm.auto import tqdm

from specfusion_lib.core.atomic import atomic_write
from specfusion_lib.core.errors import ConfigurationError, SnapshotError
from specfusion_lib.core.parallel import available_cpus
from specfusion_lib.data.structure_labels import normalize_crystal_system
from specfusion_lib.spectra import pxrd

if TYPE_CHECKING:
    from specfusion_lib.data.snapshot import Snapshot

logger = logging.getLogger(__name__)

__all__ = [
    "KERNEL_HALF_WIDTH_DEG",
    "MEASUREMENT_CONDITIONS",
    "TRAINING_CONDITIONS",
    "PatternConditions",
    "StickPatterns",
    "read_stick_cache",
    "render_sticks",
    "simulate_sticks",
    "stick_cache_path",
    "write_stick_cache",
]

#: Half width of the Voigt kernel in degrees (the Lorentzian tail beyond it holds < 0.3 % of
#: the area for the widths used here).
KERNEL_HALF_WIDTH_DEG: float = 10.0
_CACHE_VERSION = 1
_CHUNK = 256  # patterns per FFT batch


@dataclass(frozen=True)
class PatternConditions:
    """Ranges of the perturbations a rendered pattern gets (see the module docstring).

    Attributes:
        fwhm_gauss: ``(lo, hi)`` Gaussian FWHM in degrees 2θ, drawn uniformly per pattern
            (``lo > 0``).
        fwhm_lorentz: ``(lo, hi)`` Lorentzian FWHM in degrees 2θ.
        peak_jitter: Strength ``s`` of the per-reflection log-normal intensity factor.
        zero_shift_deg: Maximum absolute zero shift in degrees.
        texture: Strength of the smooth multiplicative modulation.
        background: Maximum background height (fraction of the strongest peak).
        noise_level: ``(lo, hi)`` of the Gaussian noise σ (fraction of the strongest peak).
    """

    fwhm_gauss: tuple[float, float] = (pxrd.FWHM_GAUSS, pxrd.FWHM_GAUSS)
    fwhm_lorentz: tuple[float, float] = (pxrd.FWHM_LORENTZ, pxrd.FWHM_LORENTZ)
    peak_jitter: float = 0.0
    zero_shift_deg: float = 0.0
    texture: float = 0.0
    background: float = 0.0
    noise_level: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        for name in ("fwhm_gauss", "fwhm_lorentz", "noise_level"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi:
                raise ConfigurationError(f"{name} must be a range 0 ≤ lo ≤ hi, got {(lo, hi)}")
            object.__setattr__(self, name, (float(lo), float(hi)))
        if self.fwhm_gauss[0] <= 0:
            raise ConfigurationError("the Gaussian FWHM must be positive")
        if min(self.peak_jitter, self.zero_shift_deg, self.texture, self.background) < 0:
            raise ConfigurationError("perturbation amplitudes must be non-negative")

    def with_noise(self, level: float) -> PatternConditions:
        """The same conditions with a fixed noise σ."""
        return replace(self, noise_level=(float(level), float(level)))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for checkpoint metadata)."""
        return {"fwhm_gauss": list(self.fwhm_gauss), "fwhm_lorentz": list(self.fwhm_lorentz),
                "peak_jitter": self.peak_jitter, "zero_shift_deg": self.zero_shift_deg,
                "texture": self.texture, "background": self.background,
                "noise_level": list(self.noise_level)}


#: No perturbation, the simulator's default widths (the "clean" pattern of SI Fig. S18).
CLEAN_CONDITIONS = PatternConditions()
#: Training-time augmentation, drawn anew every epoch: widths from sharp synchrotron-like to
#: broad nanocrystalline peaks, noise up to 5 %, background up to 10 % of the strongest peak.
TRAINING_CONDITIONS = PatternConditions(
    fwhm_gauss=(0.05, 0.20), fwhm_lorentz=(0.0, 0.12), peak_jitter=0.2, zero_shift_deg=0.1,
    texture=0.15, background=0.10, noise_level=(0.0, 0.05))
#: Validation / test patterns: the simulator's defaults (Voigt FWHM ≈ 0.13°, 2 % noise, up
#: to 5 % background, ±0.05° zero shift, 10 % intensity perturbations).
MEASUREMENT_CONDITIONS = PatternConditions(
    peak_jitter=pxrd.INTENSITY_JITTER, zero_shift_deg=pxrd.ZERO_SHIFT_DEG,
    texture=pxrd.INTENSITY_JITTER, background=pxrd.BACKGROUND,
    noise_level=(pxrd.NOISE_LEVEL, pxrd.NOISE_LEVEL))


def _voigt_kernels(sigma: np.ndarray, gamma: np.ndarray, step: float,
                   half: int) -> np.ndarray:
    """Area-normalised Voigt kernels on ``2 * half + 1`` offsets: ``(n, 2 half + 1)``."""
    offsets = np.arange(-half, half + 1) * step
    kern = voigt_profile(offsets[None, :], sigma[:, None], gamma[:, None]) * step
    return kern / kern.sum(axis=1, keepdims=True)


def render_sticks(
    positions: Sequence[np.ndarray],
    intensities: Sequence[np.ndarray],
    grid: np.ndarray,
    rng: np.random.Generator | None = None,
    conditions: PatternConditions = CLEAN_CONDITIONS,
) -> np.ndarray:
    """Broadened (and optionally perturbed) patterns of stick lists on a uniform grid.

    Args:
        positions: Per pattern, reflection positions in degrees 2θ (may extend beyond the grid).
        intensities: Per pattern, integrated intensities (same lengths).
        grid: Uniform, increasing 2θ grid.
        rng: Random generator (required unless ``conditions`` has no randomness).
        conditions: Perturbations (module docstring, steps a–d).

    Returns:
        ``(n, len(grid))`` float32, each row with a maximum of 1 before the noise and
        background step, and rescaled to 1 after it (an empty stick list gives a row of
        background and noise only).

    Raises:
        ConfigurationError: If randomness is needed but ``rng`` is ``None``.
    """
    n, m = len(positions), grid.size
    random = (conditions.peak_jitter > 0 or conditions.zero_shift_deg > 0
              or conditions.texture > 0 or conditions.background > 0
              or conditions.noise_level[1] > 0
              or conditions.fwhm_gauss[0] != conditions.fwhm_gauss[1]
              or conditions.fwhm_lorentz[0] != conditions.fwhm_lorentz[1])
    if random and rng is None:
        raise ConfigurationError("these pattern conditions are random: pass an rng")
    step = float(grid[1] - grid[0])
    pad = int(np.ceil(pxrd.PEAK_MARGIN_DEG / step)) + 1
    half = int(np.ceil(KERNEL_HALF_WIDTH_DEG / step))
    n_ext = m + 2 * pad
    origin = float(grid[0]) - pad * step
    nfft = next_fast_len(n_ext + 2 * half)
    out = np.empty((n, m), dtype=np.float32)
    gen = rng if rng is not None else np.random.default_rng(0)
    for start in range(0, n, _CHUNK):
        rows = range(start, min(n, start + _CHUNK))
        k = len(rows)
        # Random numbers, drawn in a fixed order per chunk.
        fg = gen.uniform(*conditions.fwhm_gauss, k)
        fl = gen.uniform(*conditions.fwhm_lorentz, k)
        shift = gen.uniform(-1.0, 1.0, k) * conditions.zero_shift_deg
        where: list[np.ndarray] = []
        weight: list[np.ndarray] = []
        for r, i in enumerate(rows):
            pos = np.asarray(positions[i], dtype=float) + shift[r]
            amp = np.asarray(intensities[i], dtype=float)
            z = gen.standard_normal(amp.size)
            if conditions.peak_jitter > 0:
                s = conditions.peak_jitter
                amp = amp * np.exp(s * z - s * s / 2.0)
            f = (pos - origin) / step
            inside = (f >= 0) & (f <= n_ext - 1)
            f, amp = f[inside], amp[inside]
            i0 = np.minimum(np.floor(f).astype(np.int64), n_ext - 2)
            w = f - i0
            where += [r * n_ext + i0, r * n_ext + i0 + 1]
            weight += [amp * (1 - w), amp * w]
        dense = np.bincount(np.concatenate(where) if where else np.zeros(0, np.int64),
                            np.concatenate(weight) if weight else None,
                            minlength=k * n_ext).reshape(k, n_ext)
        # The linear split acts like a triangle of variance step²/6: take it off σ².
        sigma = np.sqrt(np.maximum((fg * pxrd.FWHM_TO_SIGMA) ** 2 - step * step / 6.0,
                                   (0.1 * step) ** 2))
        kern = _voigt_kernels(sigma, fl / 2.0, step, half)  # (k, 2 half + 1)
        conv = irfft(rfft(dense, nfft, axis=1) * rfft(kern, nfft, axis=1), nfft, axis=1)
        block = conv[:, half + pad: half + pad + m]
        top = block.max(axis=1, keepdims=True)
        block = block / np.where(top > 0, top, 1.0)
        if random:
            block = pxrd.augment_pattern(
                block, gen, noise_level=conditions.noise_level, background=conditions.background,
                zero_shift_deg=0.0, intensity_jitter=conditions.texture, grid=grid)
        out[start:start + k] = block
    return out


@dataclass(frozen=True, eq=False)
class StickPatterns:
    """Reflections of ``N`` structures in ragged form, with their crystal systems.

    Attributes:
        material_ids: ``N`` material ids.
        formulas: ``N`` reduced formulas.
        crystal_systems: ``N`` crystal systems (lower case) or ``None`` where absent.
        offsets: ``(N + 1,)`` int64: the reflections of material ``i`` are
            ``two_theta[offsets[i]:offsets[i + 1]]``.
        two_theta: ``(M,)`` reflection positions in degrees.
        intensity: ``(M,)`` integrated intensities (max 1 per material).
        two_theta_range: The pattern grid's range in degrees.
        step: The grid step in degrees.
        wavelength: Radiation (pymatgen name or Å).
        snapshot_id: Snapshot the structures come from.
        skipped: Material id → why its pattern could not be simulated.
    """

    material_ids: tuple[str, ...]
    formulas: tuple[str, ...]
    crystal_systems: tuple[str | None, ...]
    offsets: np.ndarray
    two_theta: np.ndarray
    intensity: np.ndarray
    two_theta_range: tuple[float, float] = pxrd.TWO_THETA_RANGE
    step: float = pxrd.TWO_THETA_STEP
    wavelength: str | float = pxrd.WAVELENGTH
    snapshot_id: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.material_ids)
        if len(self.formulas) != n or len(self.crystal_systems) != n:
            raise ConfigurationError("material_ids, formulas and crystal_systems differ in length")
        if self.offsets.shape != (n + 1,) or self.offsets[-1] != self.two_theta.size:
            raise ConfigurationError("offsets do not match the reflections")
        if self.two_theta.shape != self.intensity.shape:
            raise ConfigurationError("two_theta and intensity differ in shape")

    def __len__(self) -> int:
        return len(self.material_ids)

    @property
    def grid(self) -> np.ndarray:
        """The 2θ grid of the rendered patterns, degrees."""
        return pxrd.two_theta_grid(self.two_theta_range, self.step)

    def peaks(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(two_theta, intensity)`` of material ``i``'s reflections."""
        sl = slice(int(self.offsets[i]), int(self.offsets[i + 1]))
        return self.two_theta[sl], self.intensity[sl]

    def index_of(self, material_ids: Iterable[str]) -> np.ndarray:
        """Row indices of the given ids.

        Raises:
            ConfigurationError: If an id has no pattern.
        """
        lookup = {m: i for i, m in enumerate(self.material_ids)}
        try:
            return np.array([lookup[m] for m in material_ids], dtype=np.int64)
        except KeyError as exc:
            raise ConfigurationError(f"material {exc.args[0]!r} has no simulated pattern"
                                     ) from None

    def subset(self, indices: Sequence[int] | np.ndarray) -> StickPatterns:
        """The materials at ``indices``, in that order."""
        idx = np.asarray(indices, dtype=np.int64)
        parts = [self.peaks(int(i)) for i in idx]
        counts = np.array([p[0].size for p in parts], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)

        def cat(k: int) -> np.ndarray:
            return np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)

        return replace(self, material_ids=tuple(self.material_ids[i] for i in idx),
                       formulas=tuple(self.formulas[i] for i in idx),
                       crystal_systems=tuple(self.crystal_systems[i] for i in idx),
                       offsets=offsets, two_theta=cat(0), intensity=cat(1))

    def render(self, indices: Sequence[int] | np.ndarray | None = None,
               rng: np.random.Generator | None = None,
               conditions: PatternConditions = CLEAN_CONDITIONS) -> np.ndarray:
        """Patterns of the materials at ``indices`` (default all): ``(n, L)`` float32.

        See :func:`render_sticks`.
        """
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        peaks = [self.peaks(int(i)) for i in idx]
        return render_sticks([p[0] for p in peaks], [p[1] for p in peaks], self.grid, rng,
                             conditions)

    def pattern(self, i: int, rng: np.random.Generator | None = None,
                conditions: PatternConditions = CLEAN_CONDITIONS) -> pxrd.PXRDPattern:
        """One rendered pattern as a :class:`~specfusion_lib.spectra.pxrd.PXRDPattern`."""
        y = self.render([i], rng, conditions)[0]
        return pxrd.PXRDPattern(self.grid, y, wavelength=self.wavelength,
                                source=f"simulated:{self.material_ids[i]}",
                                metadata={"formula": self.formulas[i],
                                          "material_id": self.material_ids[i],
                                          "conditions": conditions.as_dict()})

    # ----------------------------------------------------------------------------- cache

    def _to_npz(self) -> bytes:
        meta = {"version": _CACHE_VERSION, "material_ids": list(self.material_ids),
                "formulas": list(self.formulas), "crystal_systems": list(self.crystal_systems),
                "two_theta_range": list(self.two_theta_range), "step": self.step,
                "wavelength": self.wavelength, "snapshot_id": self.snapshot_id,
                "skipped": self.skipped}
        buf = io.BytesIO()
        np.savez(buf, offsets=self.offsets, two_theta=self.two_theta, intensity=self.intensity,
                 meta=np.array(json.dumps(meta)))
        return buf.getvalue()

    @classmethod
    def _from_npz(cls, path: Path) -> StickPatterns:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(str(npz["meta"]))
            if meta.get("version") != _CACHE_VERSION:
                raise SnapshotError(f"{path}: stick cache version {meta.get('version')}")
            return cls(tuple(meta["material_ids"]), tuple(meta["formulas"]),
                       tuple(meta["crystal_systems"]), npz["offsets"].astype(np.int64),
                       npz["two_theta"].astype(float), npz["intensity"].astype(float),
                       tuple(meta["two_theta_range"]), float(meta["step"]), meta["wavelength"],
                       meta["snapshot_id"], dict(meta["skipped"]))


def _settings_key(wavelength: str | float, two_theta_range: tuple[float, float],
                  step: float) -> str:
    text = json.dumps([_CACHE_VERSION, str(wavelength), list(map(float, two_theta_range)),
                       float(step), pxrd.PEAK_MARGIN_DEG])
    return hashlib.sha256(text.encode()).hexdigest()[:10]


def simulate_sticks(
    snapshot: Snapshot,
    *,
    material_ids: Iterable[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    wavelength: str | float = pxrd.WAVELENGTH,
    two_theta_range: tuple[float, float] = pxrd.TWO_THETA_RANGE,
    step: float = pxrd.TWO_THETA_STEP,
    progress: bool = False,
    workers: int | None = None,
) -> StickPatterns:
    """Reflections of every structure of a snapshot (or of ``material_ids``), cached.

    Args:
        snapshot: A loaded snapshot (``materials`` table with ``structure`` JSON and
            ``crystal_system``).
        material_ids: Only these materials (default all). With a cache the cache holds all
            (every later call is served from it); without one only these are simulated.
        cache_dir: Folder of the stick cache (``None``: no cache). The file name holds the
            snapshot id and a hash of the settings, so a changed snapshot is simulated anew.
        wavelength: Radiation (pymatgen name or Å).
        two_theta_range: Range of the pattern grid, degrees; reflections are computed
            :data:`~specfusion_lib.spectra.pxrd.PEAK_MARGIN_DEG` beyond it.
        step: Grid step, degrees.
        progress: Show a progress bar.
        workers: Processes simulating chunks of structures (default: the CPUs this process
            may use, :func:`~specfusion_lib.core.parallel.available_cpus`; 1: in this
            process). Measured: the 3,004 demo structures take 22 s on 2 cores.

    Returns:
        :class:`StickPatterns` in the order of the snapshot's materials table (or of
        ``material_ids``), materials that failed listed in ``skipped``.

    Raises:
        ConfigurationError: If a requested id is not in the snapshot.
    """
    pxrd.two_theta_grid(two_theta_range, step)  # validates the grid
    sid = getattr(snapshot, "snapshot_id", None)
    path = None
    if cache_dir is not None and sid:
        path = stick_cache_path(cache_dir, str(sid)[:16], wavelength, two_theta_range, step)
    sticks = None if path is None else read_stick_cache(path)
    materials = snapshot.materials
    if material_ids is not None:
        wanted = list(material_ids)
        unknown = sorted(set(wanted) - set(materials["material_id"]))
        if unknown:
            raise ConfigurationError(f"material(s) {unknown[:5]} are not in the snapshot")
        if path is None:  # nothing to cache: simulate only these
            materials = materials[materials["material_id"].isin(set(wanted))]
    if sticks is None:
        t0 = time.perf_counter()
        sticks = _simulate_all(materials, sid, wavelength, two_theta_range, step, progress,
                               workers)
        logger.info("PXRD sticks: %d of %d structure(s) simulated in %.1f s, %d skipped",
                    len(sticks), len(materials), time.perf_counter() - t0, len(sticks.skipped))
        if sticks.skipped:
            shown = "; ".join(f"{mid}: {why}" for mid, why in list(sticks.skipped.items())[:3])
            logger.warning("PXRD sticks: %d structure(s) skipped (%s%s)", len(sticks.skipped),
                           shown, " ..." if len(sticks.skipped) > 3 else "")
        if path is not None:
            write_stick_cache(path, sticks)
    if material_ids is None:
        return sticks
    have = set(sticks.material_ids)
    return sticks.subset(sticks.index_of([m for m in wanted if m in have]))


def stick_cache_path(cache_dir: str | os.PathLike[str], name: str,
                     wavelength: str | float = pxrd.WAVELENGTH,
                     two_theta_range: tuple[float, float] = pxrd.TWO_THETA_RANGE,
                     step: float = pxrd.TWO_THETA_STEP) -> Path:
    """``<cache_dir>/pxrd-sticks-<name>-<settings hash>.npz``: the one naming rule of stick
    caches (a change of radiation, range or step gives another file)."""
    key = _settings_key(wavelength, two_theta_range, step)
    return Path(cache_dir) / f"pxrd-sticks-{name}-{key}.npz"


def read_stick_cache(path: str | os.PathLike[str]) -> StickPatterns | None:
    """A stick cache file, or ``None`` when it is missing or unreadable (logged)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        sticks = StickPatterns._from_npz(path)
    except (OSError, ValueError, KeyError, SnapshotError) as exc:
        logger.warning("PXRD stick cache %s unreadable (%s); simulating again", path, exc)
        return None
    logger.info("PXRD sticks: %d structure(s) from cache %s (%d skipped when simulated)",
                len(sticks), path, len(sticks.skipped))
    return sticks


def write_stick_cache(path: str | os.PathLike[str], sticks: StickPatterns) -> None:
    """Write a stick cache file atomically (folder created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = sticks._to_npz()
    atomic_write(path, lambda handle: handle.write(data))
    logger.info("wrote PXRD stick cache %s", path)


#: Structures per task of the stick-simulation process pool.
_STICK_CHUNK = 64


def _stick_peaks(structure_json: str | None, wavelength: str | float, lo: float, hi: float
                 ) -> tuple[np.ndarray, np.ndarray] | str:
    """Reflections of one structure JSON, or the reason none could be simulated."""
    if structure_json is None:
        return "no structure"
    try:
        structure = Structure.from_dict(json.loads(structure_json))
        peaks = pxrd.simulate_peaks(structure, wavelength=wavelength, two_theta_range=(lo, hi))
    except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return peaks.two_theta, peaks.intensity


def _stick_chunk(structures: Sequence[str | None], wavelength: str | float, lo: float,
                 hi: float) -> list[tuple[np.ndarray, np.ndarray] | str]:
    return [_stick_peaks(s, wavelength, lo, hi) for s in structures]


def _peaks_of_all(structures: Sequence[str | None], wavelength: str | float, lo: float,
                  hi: float, workers: int, progress: bool
                  ) -> Iterable[tuple[np.ndarray, np.ndarray] | str]:
    """Reflections of every structure in order; chunks run in ``workers`` processes."""
    chunks = [structures[i:i + _STICK_CHUNK] for i in range(0, len(structures), _STICK_CHUNK)]
    bar = tqdm(total=len(structures), desc="PXRD sticks", disable=not progress, leave=False)
    with bar:
        if workers <= 1 or len(chunks) < 2:
            for chunk in chunks:
                yield from _stick_chunk(chunk, wavelength, lo, hi)
                bar.update(len(chunk))
            return
        # spawn: a forked copy of a process that already runs torch's thread pools can hang
        context = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(max_workers=min(workers, len(chunks)),
                                    mp_context=context) as pool:
            futures = [pool.submit(_stick_chunk, chunk, wavelength, lo, hi) for chunk in chunks]
            for chunk, future in zip(chunks, futures, strict=True):
                yield from future.result()
                bar.update(len(chunk))


def _simulate_all(materials: Any, snapshot_id: str | None, wavelength: str | float,
                  two_theta_range: tuple[float, float], step: float, progress: bool,
                  workers: int | None = None) -> StickPatterns:
    lo = max(float(two_theta_range[0]) - pxrd.PEAK_MARGIN_DEG, 0.0)
    hi = min(float(two_theta_range[1]) + pxrd.PEAK_MARGIN_DEG, 180.0)
    ids, formulas, systems, tt, inten, counts = [], [], [], [], [], []
    skipped: dict[str, str] = {}
    systems_column = (materials["crystal_system"] if "crystal_system" in materials
                      else [None] * len(materials))
    n_workers = available_cpus() if workers is None else int(workers)
    peaks_iter = _peaks_of_all(list(materials["structure"]), wavelength, lo, hi, n_workers,
                               progress)
    rows = zip(materials["material_id"], materials["formula"], systems_column, peaks_iter,
               strict=True)
    for mid, formula, system, peaks in rows:
        if isinstance(peaks, str):
            skipped[str(mid)] = peaks
            continue
        ids.append(str(mid))
        formulas.append(str(formula))
        label = None
        if isinstance(system, str) and system:
            try:
                label = normalize_crystal_system(system)
            except ValueError:
                label = None  # not one of the seven systems: treated as absent
        systems.append(label)
        tt.append(peaks[0])
        inten.append(peaks[1])
        counts.append(len(peaks[0]))
    offsets = np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
    return StickPatterns(
        tuple(ids), tuple(formulas), tuple(systems), offsets,
        np.concatenate(tt) if tt else np.zeros(0), np.concatenate(inten) if inten else np.zeros(0),
        tuple(map(float, two_theta_range)), float(step), wavelength, snapshot_id, skipped)
