"""Run-directory files: their names, and writes that leave a file complete or absent.

Every file vaelab writes goes through ``atomic_path`` (write to a temporary name, rename when
complete), so a crash, a kill or a full disk never leaves a half-written result behind.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import VaelabError

METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
TRAIN_STATE_FILE = "train_state.pt"
CHECKPOINT_FILE = "checkpoint.pt"
LATENTS_FILE = "vae_latents.h5"
PLOTS_DIR = "plots"


def flatten(tree: dict, separator: str = ".", prefix: str = "") -> dict:
    """Nested mappings as one level (metrics.json's and configs' nested keys):
    ``{"loss": {"beta": 0.5}}`` -> ``{"loss.beta": 0.5}``; an empty mapping stays a value."""
    flat = {}
    for part, value in tree.items():
        name = f"{prefix}{part}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, separator, f"{name}{separator}"))
        else:
            flat[name] = value
    return flat


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; move it into place only if the block succeeds.

    The parent directory is created; a parent that cannot be created or written raises
    VaelabError naming it, and so does a write that fails for want of space or any other OS
    error, naming ``path``. On any error the temporary file is removed.
    """
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise VaelabError(f"{target.parent}: output directory is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the finished file gets the usual mode
    try:
        yield tmp
        os.replace(tmp, target)
    except VaelabError:
        raise
    except Exception as exc:
        problem = _write_problem(exc, target.parent)
        if problem is None:
            raise
        _release_frames(exc)
        raise VaelabError(f"{target}: could not write ({problem})") from exc
    finally:
        tmp.unlink(missing_ok=True)


def _release_frames(exc: BaseException | None) -> None:
    """Clear the frames of ``exc``'s traceback and of the exceptions it was raised during.

    A failed writer may still hold the temporary file open from one of those frames (torch.save's
    writer does); on a full disk its blocks come back, e.g. for metrics.json, only once it closes.
    """
    while exc is not None:
        traceback.clear_frames(exc.__traceback__)
        exc = exc.__context__


def _write_problem(exc: Exception, directory: Path) -> str | None:
    """Why a write failed when the OS or the disk is the cause, not a bug: an OSError's reason (by
    its errno: h5py's own text spans lines), or a full disk that a writer reports otherwise
    (torch.save raises RuntimeError "basic_ios::clear: iostream error"); None for anything else."""
    if isinstance(exc, OSError):
        return os.strerror(exc.errno) if exc.errno else " ".join(str(exc).split())
    try:
        full = os.statvfs(directory).f_bavail == 0
    except OSError:
        return None
    return os.strerror(errno.ENOSPC) if full else None


def json_default(value):
    """numpy scalars and arrays as plain JSON values."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_json(path: str | os.PathLike, payload: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=json_default) + "\n")
