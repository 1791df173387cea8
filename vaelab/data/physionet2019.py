"""Import the PhysioNet/CinC Challenge 2019 sepsis data into the Layer-2 HDF5 format.

Source format (https://physionet.org/content/challenge-2019/1.0.0/): one pipe-separated ``.psv``
file per ICU stay, a header line, one row per ICU hour, the literal string ``NaN`` for missing values,
``ICULOS`` = hours since ICU admission. The source is read as is: a directory of ``.psv`` files
(searched recursively) or a ``.tar``/``.tar.gz`` archive streamed with :mod:`tarfile` (nothing is
unpacked to disk). Hidden files (names starting with ``.``, e.g. macOS ``._p000001.psv``) are skipped.
Only the columns used below are parsed; the 26 laboratory columns are not read.

What the import does
--------------------
* **Vitals**: 7 columns in :data:`~vaelab.data.layer2.DEFAULT_VITALS` order:
  HR <- ``HR``, SBP <- ``SBP``, DBP <- ``DBP``, MAP <- ``MAP``, RR <- ``Resp``, SPO2 <- ``O2Sat``,
  TEMP <- ``Temp``. Physiological units as in the source (beats/min, mm Hg, breaths/min, %, deg C).
* **Time**: hours are aligned on ``ICULOS``: hour index = ICULOS - 1, so ICU hour 1 is index 0 and a
  file that starts at ICULOS 3 has its first two hours missing (mask 0). The first ``seq_len`` hours
  are kept; shorter stays are padded with mask 0 / value NaN, longer ones truncated.
* **Drops**: stays with fewer than ``min_hours`` rows (whole file) are dropped first; then stays with no
  plausible vital observed in the window are dropped (the Layer-2 format refuses patients without a
  single observation). Both counts are in the :class:`ImportReport`.
* **Implausible values** become missing (mask 0), see :data:`PLAUSIBLE_RANGES` below, and in any
  hour where DBP >= SBP (both still present after the range check) DBP is removed. The number of
  removed values per vital (counted in the output windows of the kept stays) is in the report.
* **Patient ids**: the file name without ``.psv`` (``p000001``).
* **Labels** (``labels/`` group of the Layer-2 file), one per kept stay, over the *whole* stay, not
  only the window:

  - ``sepsis`` (int8): 1 if ``SepsisLabel`` is 1 in any row, else 0. In the challenge the label turns
    on 6 h *before* the clinical sepsis onset (and may turn on after the imported window).
  - ``sepsis_onset_hour`` (float32): the first ``ICULOS`` with ``SepsisLabel`` = 1, NaN if never. It
    is an ICULOS (1-based), so its index in the arrays is ``sepsis_onset_hour - 1``; the challenge's
    clinical onset is 6 h later.
  - ``age`` (float32, years), ``gender`` (float32, 0/1 as coded in the source, NaN if missing).
  - ``length_of_stay_hours`` (int32): the **last ICULOS** of the file, i.e. hours from ICU admission
    to the last recorded hour. (Not the number of rows: files that start at ICULOS > 1 have fewer
    rows than hours in the ICU.) The challenge truncates stays at 336 h (14 days).
  - ``sepsis_onset_in_window`` (int8): 1 if the sepsis label turns on inside the imported window,
    i.e. ``sepsis_onset_hour <= seq_len`` (its array index ``sepsis_onset_hour - 1`` is below
    ``seq_len``), else 0: stays never septic *and* stays whose label turns on after the window are
    0. It tells what the window itself can show (the label is on in one of its hours) from a later
    onset, which ``sepsis`` mixes; the label still turns on 6 h before clinical onset.
  - ``length_of_stay_over_7_days`` (int8): 1 if ``length_of_stay_hours > 168`` (:data:`LONG_STAY_HOURS`),
    else 0.

Plausible ranges
----------------
Chosen from physiology and from the observed distribution in training set A (see
``shared/data/README.md``: min/p1/median/p99/max per vital); they remove a few hundred clear
artifacts out of ~3.6 million values and keep extreme but real values. Bounds are inclusive.

=======  ============  ==========================================================================
vital    range         reason
=======  ============  ==========================================================================
HR       25 - 250      min 20 is the charting system's floor (several vitals bottom out at exactly
                       20), so values near it are censored; < 25 /min as an hourly value is asystole
                       or a lead-off artifact. > 250 (260, 265, 280) exceeds even tachyarrhythmia
                       hourly means; the next values below are 223 and 221.
SBP      40 - 300      < 40 mm Hg comes with HR ~100 and MAP/DBP within a few mm Hg (pulse pressure
                       ~3): a damped arterial line, not a living patient's pressure. Max 281 kept.
DBP      25 - 180      20-24 sit on the 20 floor; > 180 (up to 298) comes with normal SBP/MAP; true
                       diastolic pressures above ~150 are exceptional. See also DBP >= SBP below.
MAP      30 - 180      < 30 with normal SBP/DBP in the same hour is an artifact (floor 20). Of the
                       hours with MAP > 180 and SBP present, 215 of 225 have MAP > SBP, which is
                       impossible (MAP lies between DBP and SBP): transducer flush artifacts, up to 300.
RR       3 - 70        1 and 2 breaths/min (40 hours) are impedance-pneumography dropouts; 3-5 can be
                       real (opioids, sedation). Max 69 kept (severe distress reaches 60+).
SPO2     50 - 100      > 100 % is impossible; oximeters are calibrated for 70-100 % only, and hourly
                       values of 20-49 % (floor 20) are probe-off readings, not a monitored patient.
TEMP     30 - 43       < 30 deg C (20.9 - 29.9) are ambient readings of a probe off the body; ICU
                       hypothermia (e.g. targeted temperature management) stays >= 32. Core
                       temperatures above 43 are not survivable; max observed 42.22 kept.
=======  ============  ==========================================================================

DBP >= SBP in the same hour (77 hours in set A): DBP is removed, SBP kept. In 69 of those 77 hours
MAP is present and below DBP, i.e. MAP agrees with SBP and contradicts DBP, so DBP is the wrong value.
MAP outside [DBP, SBP] is *not* cleaned otherwise: hourly aggregates of cuff and line pressures
taken at different times legitimately disagree a little (5,783 hours in set A).

Importing the 17,652 stays of set A takes a few seconds. The result is cached (see
:func:`import_physionet2019`). Command line::

    python -m vaelab.data.physionet2019 SOURCE [-o OUT.h5] [--seq-len 48] [--min-hours 0] [--quiet]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import sys
import tarfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from tqdm import tqdm

from ..errors import VaelabError
from ..io import atomic_path
from .layer2 import DEFAULT_VITALS, Layer2Data, read_layer2, write_layer2

log = logging.getLogger(__name__)

# Bump when the output for the same source and arguments changes (it is part of the cache key).
IMPORTER_VERSION = "2"  # 2: labels sepsis_onset_in_window, length_of_stay_over_7_days

LONG_STAY_HOURS = 7 * 24  # length_of_stay_over_7_days: a stay longer than this

# vaelab vital -> challenge column, in DEFAULT_VITALS order.
VITAL_COLUMNS: dict[str, str] = {
    "HR": "HR",
    "SBP": "SBP",
    "DBP": "DBP",
    "MAP": "MAP",
    "RR": "Resp",
    "SPO2": "O2Sat",
    "TEMP": "Temp",
}
assert tuple(VITAL_COLUMNS) == DEFAULT_VITALS

# Inclusive physiological ranges; values outside become missing. Reasons in the module docstring.
PLAUSIBLE_RANGES: dict[str, tuple[float, float]] = {
    "HR": (25.0, 250.0),  # beats/min
    "SBP": (40.0, 300.0),  # mm Hg
    "DBP": (25.0, 180.0),  # mm Hg
    "MAP": (30.0, 180.0),  # mm Hg
    "RR": (3.0, 70.0),  # breaths/min
    "SPO2": (50.0, 100.0),  # %
    "TEMP": (30.0, 43.0),  # deg C
}

_OTHER_COLUMNS = ("Age", "Gender", "ICULOS", "SepsisLabel")
REQUIRED_COLUMNS: tuple[str, ...] = tuple(VITAL_COLUMNS.values()) + _OTHER_COLUMNS
_AGE, _GENDER, _ICULOS, _SEPSIS = range(len(VITAL_COLUMNS), len(REQUIRED_COLUMNS))


@dataclass
class ImportReport:
    """What an import read, kept and removed; stored as attributes of the output file."""

    n_files: int = 0
    n_kept: int = 0
    n_dropped_short: int = 0  # fewer rows than min_hours
    n_dropped_empty: int = 0  # no plausible vital in the window
    removed_per_vital: dict[str, int] = field(default_factory=dict)  # implausible values made missing
    n_dbp_ge_sbp: int = 0  # of removed_per_vital['DBP']: hours where DBP >= SBP
    n_sepsis: int = 0  # kept stays with sepsis = 1
    seconds: float = 0.0

    def summary(self) -> str:
        removed = ", ".join(f"{v} {n}" for v, n in self.removed_per_vital.items())
        prevalence = 100.0 * self.n_sepsis / self.n_kept if self.n_kept else 0.0
        return (
            f"{self.n_files} files read, {self.n_kept} stays kept, {self.n_dropped_short} dropped as shorter than "
            f"min_hours, {self.n_dropped_empty} dropped with no vital in the window; implausible values removed: "
            f"{removed} (DBP >= SBP: {self.n_dbp_ge_sbp}); sepsis {self.n_sepsis} ({prevalence:.2f} %); "
            f"{self.seconds:.1f} s"
        )


# --------------------------------------------------------------------------------------------------
# Public API


def import_physionet2019(
    source: str | os.PathLike,
    output: str | os.PathLike | None = None,
    seq_len: int = 48,
    min_hours: int = 0,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Import ``source`` (directory of ``.psv`` files or a tar archive) to a Layer-2 file; return its path.

    With ``output`` the file is written there (always re-imported). Without it the file goes into
    ``cache_dir`` (default ``$XDG_CACHE_HOME/vaelab/physionet2019``, i.e. ``~/.cache/...``) under a
    name derived from the source (resolved path, size and mtime of the archive, or of every ``.psv``
    file of a directory), ``seq_len``, ``min_hours``, the plausible ranges and the importer version;
    when that file exists it is returned at once without reading the source. The
    :class:`ImportReport` is logged and stored in the file's attributes (:func:`read_import_report`).
    """
    source = _check_source(source)
    seq_len, min_hours = _check_args(seq_len, min_hours)
    key = _cache_key(source, seq_len, min_hours)
    if output is None:
        base = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        output = base / f"{_stem(source)}_T{seq_len}_min{min_hours}_{key[:16]}.h5"
        if _is_cached(output, key):
            log.info("physionet2019: using cached %s", output)
            return output
    output = Path(output)

    data, report = read_physionet2019(source, seq_len=seq_len, min_hours=min_hours, progress=progress)
    started = time.perf_counter() - report.seconds
    with atomic_path(output) as tmp:
        write_layer2(tmp, data)
        report.seconds = time.perf_counter() - started
        try:
            with h5py.File(tmp, "a") as f:
                f.attrs.update(_report_attrs(report, source, seq_len, min_hours, key))
        except OSError as e:
            raise VaelabError(f"{output}: could not write file ({_one_line(e)})") from e
    log.info("physionet2019: %s -> %s", report.summary(), output)
    return output


def load_physionet2019(
    source: str | os.PathLike,
    output: str | os.PathLike | None = None,
    seq_len: int = 48,
    min_hours: int = 0,
    progress: bool = True,
    cache_dir: str | os.PathLike | None = None,
) -> Layer2Data:
    """:func:`import_physionet2019` (cached) and read the result back with :func:`read_layer2`."""
    return read_layer2(import_physionet2019(source, output, seq_len, min_hours, progress, cache_dir))


def read_import_report(path: str | os.PathLike) -> ImportReport:
    """The :class:`ImportReport` stored in a file written by :func:`import_physionet2019`."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as f:
            raw = f.attrs.get("import_report")
    except OSError as e:
        raise VaelabError(f"{path}: not a readable HDF5 file ({_one_line(e)})") from e
    if raw is None:
        raise VaelabError(f"{path}: has no PhysioNet 2019 import report (attribute 'import_report')")
    return ImportReport(**json.loads(raw))


def read_physionet2019(
    source: str | os.PathLike, seq_len: int = 48, min_hours: int = 0, progress: bool = True
) -> tuple[Layer2Data, ImportReport]:
    """Parse ``source`` into memory (no cache, nothing written): the Layer-2 data and the report."""
    started = time.perf_counter()
    source = _check_source(source)
    seq_len, min_hours = _check_args(seq_len, min_hours)
    files = _read_files(source, progress)
    table, counts = _parse(files)
    data, report = _build(files, table, counts, seq_len, min_hours, source)
    report.seconds = time.perf_counter() - started
    return data, report


# --------------------------------------------------------------------------------------------------
# Reading the source


@dataclass
class _File:
    name: str  # for messages: the file's path, or ARCHIVE/MEMBER
    patient_id: str
    lines: list[str]  # all lines, header first
    columns: tuple[str, ...]  # header cells
    usecols: tuple[int, ...]  # positions of REQUIRED_COLUMNS
    rows: list[str]  # non-blank data lines


def _check_source(source) -> Path:
    path = Path(source).expanduser()
    if not path.exists():
        raise VaelabError(f"{path}: PhysioNet 2019 source not found (expected a directory of .psv files or a .tar.gz)")
    return path


def _check_args(seq_len, min_hours) -> tuple[int, int]:
    if isinstance(seq_len, bool) or not isinstance(seq_len, (int, np.integer)) or seq_len < 1:
        raise VaelabError(f"seq_len must be a whole number of hours >= 1, not {seq_len!r}")
    if isinstance(min_hours, bool) or not isinstance(min_hours, (int, np.integer)) or min_hours < 0:
        raise VaelabError(f"min_hours must be a whole number of hours >= 0, not {min_hours!r}")
    return int(seq_len), int(min_hours)


def _is_psv(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.endswith(".psv") and not base.startswith(".")


def _read_files(source: Path, progress: bool) -> list[_File]:
    files = [_make_file(name, data) for name, data in _iter_source(source, progress)]
    if not files:
        kind = "directory" if source.is_dir() else "archive"
        raise VaelabError(f"{source}: no .psv files in this {kind}")
    files.sort(key=lambda f: (f.patient_id, f.name))
    for a, b in zip(files, files[1:]):
        if a.patient_id == b.patient_id:
            raise VaelabError(f"{b.name}: patient id {b.patient_id!r} also comes from {a.name}")
    return files


def _iter_source(source: Path, progress: bool) -> Iterator[tuple[str, bytes]]:
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*.psv") if _is_psv(p.name) and p.is_file())
        for p in tqdm(paths, desc="physionet2019", unit="file", disable=not progress):
            try:
                yield str(p), p.read_bytes()
            except OSError as e:
                raise VaelabError(f"{p}: cannot read file ({e.strerror or e})") from None
        return
    if not source.is_file():
        raise VaelabError(f"{source}: neither a directory of .psv files nor a tar archive")
    yield from _iter_tar(source, progress)


class _Counting:
    """A file object that advances a progress bar by the bytes read (tarfile streams through it)."""

    def __init__(self, raw, bar):
        self.raw, self.bar = raw, bar

    def read(self, size=-1):
        data = self.raw.read(size)
        self.bar.update(len(data))
        return data


def _iter_tar(source: Path, progress: bool) -> Iterator[tuple[str, bytes]]:
    n_members = 0
    try:
        with (
            open(source, "rb") as raw,
            tqdm(total=source.stat().st_size, desc="physionet2019", unit="B", unit_scale=True, disable=not progress) as bar,
        ):
            with tarfile.open(fileobj=_Counting(raw, bar), mode="r|*") as tf:
                for member in tf:
                    n_members += 1
                    if member.isfile() and _is_psv(member.name):
                        yield f"{source}/{member.name}", tf.extractfile(member).read()
    except tarfile.ReadError as e:
        if n_members == 0:
            problem = f"neither a directory of .psv files nor a tar archive ({_one_line(e)})"
            raise VaelabError(f"{source}: {problem}") from None
        raise VaelabError(f"{source}: tar archive is truncated or corrupt ({_one_line(e)})") from None
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise VaelabError(f"{source}: tar archive is truncated or corrupt ({_one_line(e)})") from None


def _make_file(name: str, data: bytes) -> _File:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise VaelabError(f"{name}: not UTF-8 text (byte {e.start})") from None
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise VaelabError(f"{name}: empty file (expected a header line)")
    columns = tuple(c.strip() for c in lines[0].split("|"))
    seen = set()
    for c in columns:
        if c in seen:
            raise VaelabError(f"{name}: header repeats column {c!r}")
        seen.add(c)
    for c in REQUIRED_COLUMNS:
        if c not in seen:
            raise VaelabError(f"{name}: header has no column {c!r} (is this a PhysioNet 2019 .psv file?)")
    usecols = tuple(columns.index(c) for c in REQUIRED_COLUMNS)
    rows = lines[1:]
    if not all(rows):  # blank lines (e.g. a trailing one) are skipped
        rows = [r for r in rows if r]
    if not rows:
        raise VaelabError(f"{name}: no data rows after the header")
    # Every row must have as many cells as the header: count the separators in one pass.
    if text.count("|") != lines[0].count("|") * (len(rows) + 1):
        _find_bad_cell(_File(name, "", lines, columns, usecols, rows))
    base = name.rsplit("/", 1)[-1]
    return _File(name, base[: -len(".psv")], lines, columns, usecols, rows)


# --------------------------------------------------------------------------------------------------
# Parsing


def _parse(files: list[_File]) -> tuple[np.ndarray, np.ndarray]:
    """All rows of all files as one (rows, len(REQUIRED_COLUMNS)) float64 table, and rows per file."""
    counts = np.array([len(f.rows) for f in files], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    table = np.empty((int(offsets[-1]), len(REQUIRED_COLUMNS)))
    groups: dict[tuple[int, ...], list[int]] = {}  # files with the same column layout parse together
    for i, f in enumerate(files):
        groups.setdefault(f.usecols, []).append(i)
    for usecols, members in groups.items():
        lines = [row for i in members for row in files[i].rows]
        try:
            parsed = np.loadtxt(lines, delimiter="|", usecols=usecols, dtype=np.float64, ndmin=2, comments=None)
        except ValueError as e:
            for i in members:
                _find_bad_cell(files[i], fallback=e)
            raise VaelabError(f"{files[members[0]].name} (or another file): cannot parse ({_one_line(e)})") from None
        index = np.concatenate([np.arange(offsets[i], offsets[i + 1]) for i in members])
        table[index] = parsed
    return table, counts


def _find_bad_cell(f: _File, fallback: Exception | None = None) -> None:
    """Raise a VaelabError naming the first bad line/cell of ``f``; return if none is found."""
    n = len(f.columns)
    for lineno, line in enumerate(f.lines[1:], start=2):
        if not line:
            continue
        cells = line.split("|")
        if len(cells) != n:
            raise VaelabError(f"{f.name}: line {lineno} has {len(cells)} cells but the header has {n} columns")
        for name, col in zip(REQUIRED_COLUMNS, f.usecols):
            try:
                float(cells[col])
            except ValueError:
                raise VaelabError(f"{f.name}: line {lineno}, column {name!r}: {cells[col]!r} is not a number") from None
    if fallback is not None:
        try:
            np.loadtxt(f.rows, delimiter="|", usecols=f.usecols, ndmin=2, comments=None)
        except ValueError as e:
            raise VaelabError(f"{f.name}: cannot parse ({_one_line(e)})") from None


def _line_of(f: _File, k: int) -> int:
    """Line number (1-based, header = 1) of the k-th data row of ``f``."""
    seen = -1
    for lineno, line in enumerate(f.lines[1:], start=2):
        if line:
            seen += 1
            if seen == k:
                return lineno
    return -1


# --------------------------------------------------------------------------------------------------
# Building the Layer-2 arrays


def _build(files, table, counts, seq_len, min_hours, source) -> tuple[Layer2Data, ImportReport]:
    n_files = len(files)
    offsets = np.concatenate([[0], np.cumsum(counts)])
    starts = offsets[:-1]
    file_of_row = np.repeat(np.arange(n_files), counts)

    iculos = table[:, _ICULOS]
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(iculos) | (iculos < 1) | (iculos != np.round(iculos))
    if bad.any():
        r = int(np.argmax(bad))
        f = files[file_of_row[r]]
        raise VaelabError(
            f"{f.name}: line {_line_of(f, r - starts[file_of_row[r]])}, column 'ICULOS': "
            f"{_cell(f, r - starts[file_of_row[r]], _ICULOS)!r} is not a whole number of hours >= 1"
        )
    steps = np.diff(iculos)
    same_file = file_of_row[1:] == file_of_row[:-1]
    not_increasing = same_file & (steps <= 0)
    if not_increasing.any():
        r = int(np.argmax(not_increasing)) + 1
        f = files[file_of_row[r]]
        k = r - starts[file_of_row[r]]
        raise VaelabError(f"{f.name}: line {_line_of(f, k)}: ICULOS {iculos[r]:g} does not increase (previous row has {iculos[r - 1]:g})")

    # Stay-level labels over all rows.
    sepsis_rows = table[:, _SEPSIS] == 1
    sepsis = np.maximum.reduceat(sepsis_rows, starts).astype(np.int8)
    onset = np.fmin.reduceat(np.where(sepsis_rows, iculos, np.nan), starts).astype(np.float32)
    age = np.fmin.reduceat(table[:, _AGE], starts).astype(np.float32)  # constant per file; NaN ignored
    gender = np.fmin.reduceat(table[:, _GENDER], starts).astype(np.float32)
    los = iculos[offsets[1:] - 1].astype(np.int32)  # last ICULOS
    onset_in_window = (np.nan_to_num(onset, nan=np.inf) <= seq_len).astype(np.int8)  # never septic: 0
    long_stay = (los > LONG_STAY_HOURS).astype(np.int8)

    # Raw windows: hour index = ICULOS - 1, first seq_len hours.
    n_vitals = len(VITAL_COLUMNS)
    raw = np.full((n_files, seq_len, n_vitals), np.nan, dtype=np.float32)
    in_window = iculos <= seq_len
    raw[file_of_row[in_window], iculos[in_window].astype(np.int64) - 1] = table[in_window, :n_vitals]

    clean = raw.copy()
    for k, vital in enumerate(VITAL_COLUMNS):
        lo, hi = PLAUSIBLE_RANGES[vital]
        v = clean[..., k]
        with np.errstate(invalid="ignore"):
            v[~((v >= lo) & (v <= hi))] = np.nan
    i_sbp, i_dbp = DEFAULT_VITALS.index("SBP"), DEFAULT_VITALS.index("DBP")
    with np.errstate(invalid="ignore"):
        dbp_ge_sbp = clean[..., i_dbp] >= clean[..., i_sbp]
    clean[..., i_dbp][dbp_ge_sbp] = np.nan

    observed = ~np.isnan(clean)
    long_enough = counts >= min_hours
    not_empty = observed.any(axis=(1, 2))
    keep = long_enough & not_empty
    n_kept = int(keep.sum())
    report = ImportReport(
        n_files=n_files,
        n_kept=n_kept,
        n_dropped_short=int((~long_enough).sum()),
        n_dropped_empty=int((long_enough & ~not_empty).sum()),
        removed_per_vital={v: int((~np.isnan(raw[keep, :, k]) & ~observed[keep, :, k]).sum()) for k, v in enumerate(DEFAULT_VITALS)},
        n_dbp_ge_sbp=int(dbp_ge_sbp[keep].sum()),
        n_sepsis=int(sepsis[keep].sum()),
    )
    if n_kept == 0:
        raise VaelabError(
            f"{source}: no stay left to import ({report.n_dropped_short} of {n_files} shorter than min_hours="
            f"{min_hours}, {report.n_dropped_empty} with no vital in the first {seq_len} hours)"
        )
    data = Layer2Data(
        values=clean[keep],
        masks=observed[keep].astype(np.float32),
        patient_ids=np.array([f.patient_id for f in files], dtype=object)[keep],
        vitals=DEFAULT_VITALS,
        labels={
            "sepsis": sepsis[keep],
            "sepsis_onset_hour": onset[keep],
            "age": age[keep],
            "gender": gender[keep],
            "length_of_stay_hours": los[keep],
            "sepsis_onset_in_window": onset_in_window[keep],
            "length_of_stay_over_7_days": long_stay[keep],
        },
    )
    return data, report


def _cell(f: _File, k: int, column: int) -> str:
    return f.rows[k].split("|")[f.usecols[column]]


# --------------------------------------------------------------------------------------------------
# Cache and report attributes


def _default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "vaelab" / "physionet2019"


def _stem(source: Path) -> str:
    name = source.resolve().name
    for suffix in (".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".tar"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name or "physionet2019"


def _cache_key(source: Path, seq_len: int, min_hours: int) -> str:
    resolved = source.resolve()
    if resolved.is_dir():
        stats = []
        for p in sorted(resolved.rglob("*.psv")):
            if _is_psv(p.name):
                st = p.stat()
                stats.append([str(p.relative_to(resolved)), st.st_size, st.st_mtime_ns])
        fingerprint = {"files": stats}
    else:
        st = resolved.stat()
        fingerprint = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    payload = {
        "source": str(resolved),
        **fingerprint,
        "seq_len": seq_len,
        "min_hours": min_hours,
        "version": IMPORTER_VERSION,
        "ranges": PLAUSIBLE_RANGES,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _is_cached(path: Path, key: str) -> bool:
    if not path.is_file():
        return False
    try:
        with h5py.File(path, "r") as f:
            return f.attrs.get("cache_key") == key
    except OSError:  # unreadable: import again and replace it
        return False


def _report_attrs(report: ImportReport, source: Path, seq_len: int, min_hours: int, key: str) -> dict:
    return {
        "importer": "vaelab.data.physionet2019",
        "importer_version": IMPORTER_VERSION,
        "source": str(source.resolve()),
        "seq_len": seq_len,
        "min_hours": min_hours,
        "cache_key": key,
        "plausible_ranges": json.dumps(PLAUSIBLE_RANGES),
        "import_report": json.dumps(dataclasses.asdict(report)),
        **{k: v for k, v in dataclasses.asdict(report).items() if k != "removed_per_vital"},
        **{f"removed_{v}": n for v, n in report.removed_per_vital.items()},
    }


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())


# --------------------------------------------------------------------------------------------------
# Command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vaelab.data.physionet2019",
        description="Import PhysioNet/CinC 2019 .psv files (a directory or a .tar.gz) into a Layer-2 HDF5 file.",
    )
    parser.add_argument("source", help="directory of .psv files, or the challenge's .tar.gz as is")
    parser.add_argument("-o", "--output", help="output .h5 file (default: the cache, reused when up to date)")
    parser.add_argument("--seq-len", type=int, default=48, help="hours kept per stay (default 48)")
    parser.add_argument("--min-hours", type=int, default=0, help="drop stays with fewer rows (default 0)")
    parser.add_argument("--cache-dir", help="cache directory (default ~/.cache/vaelab/physionet2019)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        path = import_physionet2019(
            args.source,
            args.output,
            seq_len=args.seq_len,
            min_hours=args.min_hours,
            progress=not args.quiet,
            cache_dir=args.cache_dir,
        )
        report = read_import_report(path)
    except VaelabError as e:
        print(f"vaelab: error: {e}", file=sys.stderr)
        return 2
    print(report.summary())
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
