"""``vaelab dashboard SWEEP_DIR_OR_STORAGE_URL``: optuna-dashboard on 127.0.0.1 for a sweep's study.

A sweep directory means its ``optuna.db``; a storage URL (``sqlite:///...``, ``postgresql://...``,
``journal:///path/study.log``, or ``env`` for ``$VAELAB_STORAGE``) is opened as the sweep opens it.
The page lists the sweep's study and its companion ``<study>:epochs`` (per-epoch validation losses
of pruned sweeps). Needs the ``dashboard`` extra: ``pip install -e .[dashboard]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .analysis.studies import STUDY_FILE
from .errors import VaelabError
from .study_storage import make_storage, masked, storage_url

DEFAULT_PORT = 8080
HOST = "127.0.0.1"  # loopback only: the dashboard can change the study (tell, rename, delete)


def resolve_storage(target: str) -> str:
    """The storage URL for a sweep directory or a URL; one line naming what is wrong otherwise."""
    if "://" in target or target == "env":
        return storage_url(target)
    path = Path(target)
    if path.is_dir():
        db = path / STUDY_FILE
        if not db.is_file():
            raise VaelabError(f"{path}: no {STUDY_FILE} in this directory (its study lives elsewhere? give the storage URL)")
        return f"sqlite:///{db.resolve()}"
    if path.is_file():
        return f"sqlite:///{path.resolve()}"
    raise VaelabError(f"{target}: neither a sweep directory nor a storage URL")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vaelab dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("target", help="a sweep directory (its optuna.db) or a storage URL")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on {HOST} (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    try:
        import optuna_dashboard
    except ImportError:
        print("vaelab: error: the dashboard needs optuna-dashboard: pip install -e .[dashboard]", file=sys.stderr)
        return 2
    try:
        url = resolve_storage(args.target)
        storage = make_storage(url, heartbeat_seconds=None)
    except VaelabError as exc:
        print(f"vaelab: error: {exc}", file=sys.stderr)
        return 2
    print(f"vaelab: dashboard for {masked(url)} at http://{HOST}:{args.port}/ (Ctrl-C stops it)", file=sys.stderr, flush=True)
    try:
        optuna_dashboard.run_server(storage, host=HOST, port=args.port)
    except KeyboardInterrupt:
        return 0
    except OSError as exc:
        print(f"vaelab: error: cannot serve on {HOST}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
