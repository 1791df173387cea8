"""Where a sweep's study lives: a database URL, a journal file, or memory; one opener for the
sweep process and its jobs (which report epochs to the study for pruning)."""

from __future__ import annotations

import logging
import os
import random
import re
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc
from sqlalchemy.engine import make_url

from .errors import VaelabError, check

log = logging.getLogger(__name__)

STORAGE_ENV = "VAELAB_STORAGE"  # the storage URL, for hydra.sweeper.storage=env (or null)
STORAGE_FROM_ENV = "env"
STORAGE_ATTEMPTS = 5
JOURNAL_SCHEME = "journal://"  # journal:///abs/path/study.log: Optuna's JournalStorage on one file, no server


def storage_url(configured: Any) -> Any:
    """The storage to use: ``env`` means ``$VAELAB_STORAGE`` (required); null means it when set,
    else Optuna's in-memory storage; anything else is used as given."""
    if configured is None or configured == STORAGE_FROM_ENV:
        url = os.environ.get(STORAGE_ENV)
        check(
            bool(url) or configured is None,
            "hydra.sweeper.storage",
            f"'{STORAGE_FROM_ENV}' reads the URL from ${STORAGE_ENV}, which is not set",
        )
        return url or None
    return configured


def has_password(url: Any) -> bool:
    try:
        return isinstance(url, str) and bool(make_url(url).password)
    except Exception:  # noqa: BLE001 - not a URL: no password
        return False


def masked(url: Any) -> str:
    """A storage URL fit for a log line: its password replaced by ***."""
    if not (isinstance(url, str) and "://" in url):
        return str(url)
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is not echoed either
        return url.split("://", 1)[0] + "://***"


def journal_path(url: str) -> Path:
    path = url[len(JOURNAL_SCHEME) :]
    check(bool(path), "hydra.sweeper.storage", f"{url!r} names no file (journal:///path/to/study.log)")
    return Path(path)


def make_storage(url: Any, heartbeat_seconds: int | None = 10, stale_after_seconds: int = 60):
    """The study's storage. ``journal:///path`` is a JournalStorage on that file (several processes
    on one machine or a shared disk, no server; no heartbeats, so a killed worker's trial stays
    RUNNING). A database URL is an RDB storage, with heartbeats unless ``heartbeat_seconds`` is None;
    anything else is passed through.

    Sweep workers started together on a fresh database all create its schema; all but the first
    fail on the schema's version row (IntegrityError) or on SQLite's lock (OperationalError). The
    schema exists by then, so connecting again succeeds: a few tries, with a short random pause.
    """
    if isinstance(url, str) and url.startswith(JOURNAL_SCHEME):
        from optuna.storages.journal import JournalFileBackend

        path = journal_path(url)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        except OSError as exc:
            raise VaelabError(f"hydra.sweeper.storage {url}: {exc.strerror or exc}") from None
    if not (isinstance(url, str) and "://" in url):
        return url
    for attempt in range(1, STORAGE_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeats: stable in use since 2.x
                beats = {"heartbeat_interval": heartbeat_seconds, "grace_period": stale_after_seconds} if heartbeat_seconds else {}
                return optuna.storages.RDBStorage(url, **beats)
        except RuntimeError as exc:
            if "storage upgrade" not in str(exc):
                raise
            written_by = re.search(r"set up by optuna ([\w.]+)", str(exc))
            raise VaelabError(
                f"study storage {masked(url)}: its tables were written by optuna {written_by.group(1) if written_by else 'an older version'}; "
                f"upgrade them in place (copy the file first to keep the old one): optuna storage upgrade --storage '{masked(url)}'"
            ) from None
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError) as exc:
            if attempt == STORAGE_ATTEMPTS:
                raise
            log.info("storage %s not ready (%s); trying again", masked(url), type(exc).__name__)
            time.sleep(0.2 * attempt + random.random() * 0.3)
