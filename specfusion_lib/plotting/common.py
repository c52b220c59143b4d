"""The figure style, the message panel and the writers of figures and tables.

Every figure function of :mod:`specfusion_lib.plotting` takes plain data (pandas / numpy),
returns a matplotlib ``Figure`` (or draws on an ``ax=``) and never writes files;
:func:`save_figure` and :func:`save_table` write them under the naming
convention of the package (``figures/fig<N><panel>_<slug>.png``,
``figures/figS<N>_<slug>.png``, ``figures/tables/<slug>.csv``) atomically.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from specfusion_lib.core.atomic import atomic_write, atomic_write_text  # noqa: E402
from specfusion_lib.core.errors import ConfigurationError  # noqa: E402

__all__ = [
    "axes_or_new",
    "STYLE",
    "apply_style",
    "save_figure",
    "message_panel",
    "save_table",
]

#: The package's figure style (one place to change fonts, sizes and colours).
STYLE: dict[str, object] = {
    "figure.dpi": 110,
    "savefig.dpi": 200,
    "savefig.bbox": "tight",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "image.cmap": "viridis",
}

NOT_AVAILABLE = "not available in this snapshot"


def axes_or_new(ax: plt.Axes | None, figsize: tuple[float, float]) -> tuple[Figure, plt.Axes]:
    """``(figure, ax)``: the given axes' figure, or a new figure of ``figsize`` with one axes
    (the package style applied either way)."""
    apply_style()
    if ax is None:
        fig, ax = plt.subplots(figsize=figsize)
        return fig, ax
    return ax.figure, ax


def apply_style() -> None:
    """Apply :data:`STYLE` to matplotlib's global settings."""
    plt.rcParams.update(STYLE)


def save_figure(fig: Figure, name: str, figures_dir: str | os.PathLike[str] = "figures",
                formats: Sequence[str] = ("png",)) -> list[Path]:
    """Save ``fig`` as ``<figures_dir>/<name>.<fmt>`` for each format, atomically.

    Args:
        fig: The figure.
        name: Stem following the convention ``fig2c_...`` or ``figS1_...``.
        figures_dir: Output folder.
        formats: File formats understood by matplotlib.

    Raises:
        ConfigurationError: When ``name`` does not follow the naming convention.
    """
    if not name.startswith("fig") or "_" not in name:
        raise ConfigurationError(
            f"figure name {name!r} must look like 'fig2c_slug' or 'figS1_slug'")
    paths = []
    for fmt in formats:
        target = Path(figures_dir) / f"{name}.{fmt}"
        paths.append(atomic_write(target, lambda handle, fmt=fmt: fig.savefig(handle,
                                                                              format=fmt)))
    return paths


def save_table(table: pd.DataFrame, slug: str,
               figures_dir: str | os.PathLike[str] = "figures", index: bool = False) -> Path:
    """Save a numeric table as ``<figures_dir>/tables/<slug>.csv`` atomically."""
    target = Path(figures_dir) / "tables" / f"{slug}.csv"
    return atomic_write_text(target, table.to_csv(index=index))


def message_panel(ax: plt.Axes, text: str = NOT_AVAILABLE, title: str = "",
                  title_size: float | None = None) -> None:
    """Turn ``ax`` into a panel that only says ``text`` (e.g. why a figure has no data)."""
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="0.4",
            fontsize=8, style="italic", wrap=True)
    if title:
        ax.set_title(title, fontsize=title_size)
    ax.set_xticks([])
    ax.set_yticks([])
