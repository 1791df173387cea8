"""PhysioNet/CinC 2019 import: the challenge's quirks, directory vs tar, cache, one-line errors, CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import REPO
from physionet_files import psv_text, vitals

import vaelab.data.physionet2019 as pn
from vaelab.data.layer2 import DEFAULT_VITALS, read_layer2
from vaelab.data.physionet2019 import (
    PLAUSIBLE_RANGES,
    ImportReport,
    import_physionet2019,
    load_physionet2019,
    read_import_report,
    read_physionet2019,
)
from vaelab.errors import VaelabError


def _real_tarball() -> Path:
    """$VAELAB_PHYSIONET2019, else shared/ beside the checkout (no machine-specific paths)."""
    if os.environ.get("VAELAB_PHYSIONET2019"):
        return Path(os.environ["VAELAB_PHYSIONET2019"])
    return REPO.parent / "shared" / "data" / "physionet2019_setA.tar.gz"


REAL_TARBALL = _real_tarball()

T = 8  # seq_len of the small fixtures
HR, SBP, DBP, MAP, RR, SPO2, TEMP = range(7)


def stays() -> dict[str, str]:
    """The quirks of the real data, one stay each."""
    # p000001: empty first hour (ICULOS 1, all vitals NaN), DBP never recorded, 5 rows < T (padded).
    p1 = [{"ICULOS": 1}] + [{**vitals(hr=70 + h, dbp=None), "ICULOS": h} for h in range(2, 6)]
    # p000002: starts at ICULOS 3, 12 rows > T (truncated), implausible HR 280 / MAP 300 / Resp 1 and
    # DBP >= SBP in the window; SepsisLabel turns on at ICULOS 10, after the window.
    p2 = []
    for h in range(3, 15):
        row = {**vitals(hr=90 + h), "ICULOS": h, "SepsisLabel": int(h >= 10)}
        if h == 4:
            row["HR"] = 280
        if h == 5:
            row["MAP"] = 300
        if h == 6:
            row["Resp"] = 1
        if h == 7:
            row["SBP"], row["DBP"] = 100, 105
        if h == 12:
            row["HR"] = 280  # outside the window: neither kept nor counted
        p2.append(row)
    # p000003: sepsis label on from ICULOS 4; non-integer hourly aggregates.
    p3 = [{**vitals(hr=100.5, map_=75.33), "ICULOS": h, "SepsisLabel": int(h >= 4)} for h in range(1, 7)]
    # p000004: no vital at all: dropped.
    p4 = [{"ICULOS": h} for h in range(1, 4)]
    return {
        "p000001": psv_text(p1, age=83.14, gender=0),
        "p000002": psv_text(p2, age=45.0, gender=1),
        "p000003": psv_text(p3, age=70.0, gender=1),
        "p000004": psv_text(p4, age=50.0, gender=0),
    }


def write_dir(root: Path, files: dict[str, str] | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for pid, text in (files or stays()).items():
        (root / f"{pid}.psv").write_text(text)
    return root


def write_tar(path: Path, files: dict[str, str] | None = None, extra: dict[str, bytes] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        d = tarfile.TarInfo("training_setA")
        d.type = tarfile.DIRTYPE
        tf.addfile(d)
        members = {f"training_setA/{pid}.psv": text.encode() for pid, text in (files or stays()).items()}
        for name, data in {**members, **(extra or {})}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def one_line_error(excinfo, *fragments: str) -> str:
    msg = str(excinfo.value)
    assert "\n" not in msg, msg
    for fragment in fragments:
        assert fragment in msg, msg
    return msg


# --------------------------------------------------------------------------------------------------


def test_quirks_of_the_challenge_data(tmp_path):
    out = import_physionet2019(write_dir(tmp_path / "psv"), tmp_path / "out.h5", seq_len=T)
    assert out == tmp_path / "out.h5"
    data = read_layer2(out)
    assert data.vitals == DEFAULT_VITALS
    assert list(data.patient_ids) == ["p000001", "p000002", "p000003"]  # p000004 has no vitals
    assert data.values.shape == data.masks.shape == (3, T, 7)
    v, m = data.values, data.masks

    # p000001: ICU hour 1 empty, hours 2-5 observed (index = ICULOS - 1), padded after, DBP never.
    assert m[0, 0].sum() == 0
    assert m[0, 1:5, [HR, SBP, MAP, RR, SPO2, TEMP]].all()
    assert v[0, 1:5, HR].tolist() == [72, 73, 74, 75]
    assert m[0, :, DBP].sum() == 0 and np.isnan(v[0, :, DBP]).all()
    assert m[0, 5:].sum() == 0 and np.isnan(v[0, 5:]).all()

    # p000002: starts at ICULOS 3 -> indices 0, 1 missing; truncated at T; implausible values removed.
    assert m[1, :2].sum() == 0
    assert v[1, 2:, HR][~np.isnan(v[1, 2:, HR])].tolist() == [93, 95, 96, 97, 98]
    assert m[1, 3, HR] == 0 and np.isnan(v[1, 3, HR])  # HR 280 at ICULOS 4
    assert m[1, 4, MAP] == 0  # MAP 300 at ICULOS 5
    assert m[1, 5, RR] == 0  # Resp 1 at ICULOS 6
    assert m[1, 6, DBP] == 0 and v[1, 6, SBP] == 100  # DBP 105 >= SBP 100: DBP removed, SBP kept
    assert m[1, 2:].sum() == 6 * 7 - 4

    # p000003: non-integer aggregates kept as they are.
    assert v[2, 1:6, MAP] == pytest.approx([75.33] * 5)
    assert v[2, 1, HR] == 100.5

    labels = data.labels
    assert labels["sepsis"].tolist() == [0, 1, 1]  # p000002: label after the window still counts
    assert np.isnan(labels["sepsis_onset_hour"][0]) and labels["sepsis_onset_hour"][1:].tolist() == [10, 4]
    assert labels["age"].tolist() == pytest.approx([83.14, 45.0, 70.0])
    assert labels["gender"].tolist() == [0, 1, 1]
    assert labels["length_of_stay_hours"].tolist() == [5, 14, 6]  # last ICULOS
    assert labels["sepsis_onset_in_window"].tolist() == [0, 0, 1]  # p000002's onset (ICULOS 10) is after T
    assert labels["length_of_stay_over_7_days"].tolist() == [0, 0, 0]
    assert labels["sepsis_onset_in_window"].dtype == labels["length_of_stay_over_7_days"].dtype == np.int8

    report = read_import_report(out)
    assert (report.n_files, report.n_kept, report.n_dropped_short, report.n_dropped_empty) == (4, 3, 0, 1)
    assert report.removed_per_vital == {"HR": 1, "SBP": 0, "DBP": 1, "MAP": 1, "RR": 1, "SPO2": 0, "TEMP": 0}
    assert report.n_dbp_ge_sbp == 1 and report.n_sepsis == 2 and report.seconds > 0
    with h5py.File(out) as f:
        assert f.attrs["n_kept"] == 3 and f.attrs["removed_HR"] == 1 and f.attrs["seq_len"] == T


def test_ranges_are_documented_and_sane():
    assert set(PLAUSIBLE_RANGES) == set(DEFAULT_VITALS)
    for vital, (lo, hi) in PLAUSIBLE_RANGES.items():
        assert lo < hi and f"\n{vital}" in pn.__doc__
    # The README's implausible extremes fall outside, its medians inside.
    for vital, bad in {"HR": 280, "MAP": 300, "DBP": 298, "RR": 1}.items():
        lo, hi = PLAUSIBLE_RANGES[vital]
        assert not lo <= bad <= hi
    medians = {"HR": 84, "SPO2": 98, "TEMP": 37.06, "SBP": 118, "MAP": 77, "DBP": 58.5, "RR": 18}
    assert all(PLAUSIBLE_RANGES[v][0] < x < PLAUSIBLE_RANGES[v][1] for v, x in medians.items())


def test_longer_window_and_min_hours(tmp_path):
    source = write_dir(tmp_path / "psv")
    data, report = read_physionet2019(source, seq_len=20, min_hours=6)
    # p000001 (5 rows) and p000004 (3 rows) are short; p000004 is not counted as empty too.
    assert (report.n_dropped_short, report.n_dropped_empty, report.n_kept) == (2, 0, 2)
    assert list(data.patient_ids) == ["p000002", "p000003"]
    assert data.values.shape == (2, 20, 7)
    assert data.masks[0, 2:14].all(axis=1).sum() == 12 - 5  # ICULOS 3..14 all present but 5 cleaned hours
    assert data.masks[0, 14:].sum() == 0
    assert report.removed_per_vital["HR"] == 2  # HR 280 at ICULOS 12 is in a 20 h window


def test_onset_in_window_and_long_stay_at_their_boundaries(tmp_path):
    def stay(last_iculos: int, onset: int | None) -> str:
        # Two rows are enough: ICULOS only has to increase, and the stay's length is its last ICULOS.
        rows = [{**vitals(), "ICULOS": h, "SepsisLabel": int(onset is not None and h >= onset)} for h in (1, last_iculos)]
        if onset is not None and onset not in (1, last_iculos):
            rows.insert(1, {**vitals(), "ICULOS": onset, "SepsisLabel": 1})
        return psv_text(rows)

    files = {
        "p000001": stay(T + 5, onset=T),  # label on in the window's last hour (index T - 1): inside
        "p000002": stay(T + 5, onset=T + 1),  # first hour after the window: outside
        "p000003": stay(pn.LONG_STAY_HOURS, onset=1),  # exactly 7 days: not longer
        "p000004": stay(pn.LONG_STAY_HOURS + 1, onset=None),  # one hour more
    }
    data, _ = read_physionet2019(write_dir(tmp_path / "psv", files), seq_len=T, progress=False)
    labels = data.labels
    assert labels["sepsis_onset_hour"].tolist()[:3] == [T, T + 1, 1] and np.isnan(labels["sepsis_onset_hour"][3])
    assert labels["sepsis_onset_in_window"].tolist() == [1, 0, 1, 0]
    assert labels["sepsis"].tolist() == [1, 1, 1, 0]
    assert labels["length_of_stay_hours"].tolist() == [T + 5, T + 5, 168, 169]
    assert labels["length_of_stay_over_7_days"].tolist() == [0, 0, 0, 1]


def test_directory_and_tar_give_identical_files(tmp_path):
    out_dir = import_physionet2019(write_dir(tmp_path / "psv"), tmp_path / "a.h5", seq_len=T)
    resource_fork = {"training_setA/._p000001.psv": b"\x00\x05junk"}  # macOS tar adds these; skipped
    tar = write_tar(tmp_path / "set.tar.gz", extra=resource_fork)
    out_tar = import_physionet2019(tar, tmp_path / "b.h5", seq_len=T)
    a, b = read_layer2(out_dir), read_layer2(out_tar)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.masks, b.masks)
    assert list(a.patient_ids) == list(b.patient_ids) and a.vitals == b.vitals
    assert a.labels.keys() == b.labels.keys()
    for name in a.labels:
        np.testing.assert_array_equal(a.labels[name], b.labels[name])
    assert read_import_report(out_dir).removed_per_vital == read_import_report(out_tar).removed_per_vital


def test_cache_reuses_the_file_until_an_argument_or_the_source_changes(tmp_path, monkeypatch):
    source = write_dir(tmp_path / "psv")
    cache = tmp_path / "cache"
    first = import_physionet2019(source, seq_len=T, progress=False, cache_dir=cache)
    assert first.parent == cache and first.suffix == ".h5"
    mtime = first.stat().st_mtime_ns

    def no_reading(*args, **kwargs):
        raise AssertionError("the source was read again")

    with monkeypatch.context() as m:
        m.setattr(pn, "_read_files", no_reading)
        again = import_physionet2019(source, seq_len=T, progress=False, cache_dir=cache)
        data = load_physionet2019(source, seq_len=T, progress=False, cache_dir=cache)
    assert again == first and first.stat().st_mtime_ns == mtime
    assert data.values.shape == (3, T, 7)
    assert read_import_report(again).n_kept == 3  # the cached file carries its report

    longer = import_physionet2019(source, seq_len=T + 1, progress=False, cache_dir=cache)
    stricter = import_physionet2019(source, seq_len=T, min_hours=6, progress=False, cache_dir=cache)
    assert len({first, longer, stricter}) == 3
    assert read_layer2(longer).seq_len == T + 1 and read_layer2(stricter).n_patients == 2

    (source / "p000003.psv").write_text(stays()["p000003"].replace("100.5", "101"))
    changed = import_physionet2019(source, seq_len=T, progress=False, cache_dir=cache)
    assert changed != first and read_layer2(changed).values[2, 1, HR] == 101
    assert not list(cache.glob("*.tmp"))


def test_empty_trailing_lines_and_windows_line_endings(tmp_path):
    files = stays()
    files["p000002"] = files["p000002"].replace("\n", "\r\n") + "\r\n"
    a, _ = read_physionet2019(write_dir(tmp_path / "a"), seq_len=T)
    b, _ = read_physionet2019(write_dir(tmp_path / "b", files), seq_len=T)
    np.testing.assert_array_equal(a.masks, b.masks)


# ---- errors: one line, naming the file -----------------------------------------------------------


def test_missing_source(tmp_path):
    with pytest.raises(VaelabError) as e:
        import_physionet2019(tmp_path / "nope.tar.gz", progress=False, cache_dir=tmp_path)
    one_line_error(e, "nope.tar.gz", "not found")


def test_not_a_directory_or_tar(tmp_path):
    bogus = tmp_path / "p000001.psv"
    bogus.write_text(stays()["p000001"])
    with pytest.raises(VaelabError) as e:
        read_physionet2019(bogus)
    one_line_error(e, str(bogus), "neither a directory")


def test_no_psv_files(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hi")
    with pytest.raises(VaelabError) as e:
        read_physionet2019(tmp_path / "empty")
    one_line_error(e, "empty", "no .psv files")
    tar = tmp_path / "x.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        tf.add(tmp_path / "empty" / "notes.txt", arcname="notes.txt")
    with pytest.raises(VaelabError) as e:
        read_physionet2019(tar)
    one_line_error(e, "x.tar.gz", "no .psv files")


def test_truncated_tar(tmp_path):
    tar = write_tar(tmp_path / "set.tar.gz")
    tar.write_bytes(tar.read_bytes()[: tar.stat().st_size // 2])
    with pytest.raises(VaelabError) as e:
        read_physionet2019(tar)
    one_line_error(e, "set.tar.gz")


@pytest.mark.parametrize(
    "mangle, fragments",
    [
        (lambda t: t.replace("|DBP|", "|DIA|", 1), ["header has no column 'DBP'"]),
        (lambda t: t.replace("|ICULOS|", "|Hour|", 1), ["header has no column 'ICULOS'"]),
        (lambda t: "", ["empty file"]),
        (lambda t: t.split("\n")[0] + "\n", ["no data rows"]),
        (lambda t: t.replace("\n73|", "\n7x3|", 1), ["line 4", "column 'HR'", "'7x3'", "not a number"]),
        (lambda t: t.replace("|83.14|", "|old|", 1), ["line 2", "column 'Age'", "'old'"]),
        (lambda t: t.replace("|NaN|NaN|-0.03|", "|NaN|-0.03|", 1), ["line 2", "40 cells", "41 columns"]),
        (lambda t: t.replace("|4|0\n", "|3|0\n", 1), ["line 5", "ICULOS 3 does not increase"]),
        (lambda t: t.replace("|4|0\n", "|4.5|0\n", 1), ["line 5", "column 'ICULOS'", "'4.5'"]),
        (lambda t: t.replace("|1|0\n", "|0|0\n", 1), ["line 2", "column 'ICULOS'", "'0'"]),
    ],
)
def test_malformed_psv(tmp_path, mangle, fragments):
    files = stays()
    files["p000001"] = mangle(files["p000001"])
    source = write_dir(tmp_path / "psv", files)
    with pytest.raises(VaelabError) as e:
        read_physionet2019(source)
    one_line_error(e, str(source / "p000001.psv"), *fragments)
    # Inside a tar the message names the archive and the member.
    with pytest.raises(VaelabError) as e:
        read_physionet2019(write_tar(tmp_path / "set.tar.gz", files))
    one_line_error(e, "set.tar.gz/training_setA/p000001.psv", *fragments)


def test_duplicate_patient_id(tmp_path):
    source = write_dir(tmp_path / "psv")
    write_dir(source / "sub", {"p000002": stays()["p000002"]})
    with pytest.raises(VaelabError) as e:
        read_physionet2019(source)
    one_line_error(e, "'p000002'", "p000002.psv")


def test_nothing_left(tmp_path):
    source = write_dir(tmp_path / "psv", {"p000004": stays()["p000004"]})
    with pytest.raises(VaelabError) as e:
        read_physionet2019(source)
    one_line_error(e, "no stay left", "1 with no vital")


@pytest.mark.parametrize("kwargs", [{"seq_len": 0}, {"seq_len": 2.5}, {"min_hours": -1}])
def test_bad_arguments(tmp_path, kwargs):
    with pytest.raises(VaelabError, match="seq_len|min_hours"):
        read_physionet2019(write_dir(tmp_path / "psv"), progress=False, **kwargs)


# ---- command line --------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "vaelab.data.physionet2019", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli(tmp_path):
    tar = write_tar(tmp_path / "set.tar.gz")
    out = tmp_path / "out" / "set.h5"
    proc = run_cli(str(tar), "-o", str(out), "--seq-len", str(T), "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "4 files read, 3 stays kept" in proc.stdout and str(out) in proc.stdout
    assert read_layer2(out).values.shape == (3, T, 7)

    proc = run_cli(str(tmp_path / "missing.tar.gz"), "-o", str(out), cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vaelab: error: ") and "missing.tar.gz" in lines[0], proc.stderr


# ---- the real data -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.real_data
def test_real_set_a(tmp_path):
    assert REAL_TARBALL.is_file(), f"{REAL_TARBALL} is missing (set VAELAB_PHYSIONET2019 to its path)"
    out = import_physionet2019(REAL_TARBALL, tmp_path / "setA.h5")
    report = read_import_report(out)
    data = read_layer2(out)
    assert report.n_files == 17_652
    assert report.n_dropped_short == 0 and report.n_dropped_empty < 20
    assert report.n_kept == data.n_patients == 17_652 - report.n_dropped_empty
    assert data.values.shape == (report.n_kept, 48, 7) and data.vitals == DEFAULT_VITALS
    assert data.patient_ids[0] == "p000001" and "p009894" not in set(data.patient_ids)
    prevalence = data.labels["sepsis"].mean()
    assert 0.08 < prevalence < 0.095, prevalence  # README: 1,547 of 17,652 (8.76 %)
    assert np.isnan(data.labels["sepsis_onset_hour"]).sum() == report.n_kept - data.labels["sepsis"].sum()
    assert 18 <= data.labels["age"].min() and data.labels["age"].max() <= 89
    assert data.labels["length_of_stay_hours"].max() <= 336
    labels = data.labels
    onset = labels["sepsis_onset_hour"]
    assert (labels["sepsis_onset_in_window"] == (onset <= 48)).all()  # NaN (never septic) compares False
    assert 0 < labels["sepsis_onset_in_window"].sum() < labels["sepsis"].sum()
    assert (labels["length_of_stay_over_7_days"] == (labels["length_of_stay_hours"] > 168)).all()
    # ICU hour 1 is empty in every file that has it; later hours mostly observed.
    assert data.masks[:, 0].sum() == 0
    assert 0.3 < data.masks[:, 1:].mean() < 0.9
    removed = report.removed_per_vital
    assert set(removed) == set(DEFAULT_VITALS) and 0 < sum(removed.values()) < 5_000
    for k, vital in enumerate(DEFAULT_VITALS):  # nothing implausible left
        lo, hi = PLAUSIBLE_RANGES[vital]
        observed = data.values[..., k][data.masks[..., k] == 1]
        assert lo <= observed.min() and observed.max() <= hi
    assert isinstance(report, ImportReport) and report.seconds < 60
