"""What every vaelab figure shares: an Agg figure outside pyplot, a checked output path, an atomic PNG
write, one palette.

Figures use the object-oriented ``Figure`` API on an Agg canvas, never ``pyplot``, so nothing needs
a display, no figure state leaks between calls (or between parallel sweep workers), and importing
the plots does not change the caller's pyplot backend. Each PNG is written to a temporary file in
the target directory and moved into place: a reader never sees half a file, and a failed write
leaves the old plot (or nothing) behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import VaelabError
from ..io import atomic_path

DPI = 110

C_TRAIN = "tab:blue"
C_VAL = "tab:orange"
C_BETA = "tab:green"
C_ACTIVE = "tab:purple"
C_OBS = "black"
C_RECON = "tab:red"
C_INACTIVE = "tab:gray"
C_THRESHOLD = "tab:red"


@contextlib.contextmanager
def figure(figsize: tuple[float, float]) -> Iterator[Figure]:
    """A fresh Agg-backed figure outside pyplot's registry, cleared afterwards even on error."""
    fig = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    try:
        yield fig
    finally:
        fig.clear()


def target(path: str | os.PathLike[str]) -> Path:
    """Check the output path (and create its directory) before any drawing work is done."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise VaelabError(f"plot path {path} must end in .png (plots are always written as PNG)")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise VaelabError(f"cannot create the directory for plot {path}: {exc}") from exc
    return path


def save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Write ``fig`` as PNG to ``path`` atomically; raise VaelabError naming the path on failure."""
    path = target(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=DPI)
    except OSError as exc:
        raise VaelabError(f"cannot write plot {path}: {exc}") from exc
    return path


def no_data(ax, message: str) -> None:
    """A grey note in the middle of ``ax`` where there is nothing to draw."""
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="0.4")
