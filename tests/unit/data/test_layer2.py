"""Layer-2 HDF5 format: round trips, one-line errors for every malformed file, atomic writes."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from vaelab.data.layer2 import DEFAULT_VITALS, Layer2Data, read_layer2, write_layer2
from vaelab.errors import VaelabError

N, T, V = 5, 6, 3
VITALS = ("HR", "SBP", "TEMP")


def arrays(seed: int = 0) -> dict[str, np.ndarray]:
    """A valid file's datasets, written the way a user's own pipeline would."""
    rng = np.random.default_rng(seed)
    masks = (rng.random((N, T, V)) < 0.7).astype(np.float32)
    masks[:, 0, 0] = 1  # every patient observed at least once
    values = rng.normal(80, 10, (N, T, V)).astype(np.float32)
    values[masks == 0] = np.nan
    return {
        "values": values,
        "masks": masks,
        "patient_index": np.array([f"P{i}" for i in range(N)]).astype("S"),
        "vital_index": np.array(VITALS).astype("S"),
    }


def write_raw(path: Path, datasets: dict, groups: dict | None = None) -> Path:
    with h5py.File(path, "w") as f:
        for name, arr in datasets.items():
            f.create_dataset(name, data=arr)
        for group_name, members in (groups or {}).items():
            g = f.create_group(group_name)
            for name, arr in members.items():
                g.create_dataset(name, data=arr)
    return path


def sample_data() -> Layer2Data:
    a = arrays()
    return Layer2Data(
        values=a["values"],
        masks=a["masks"],
        patient_ids=np.array([f"P{i}" for i in range(N)], dtype=object),
        vitals=VITALS,
        factors={"level": np.linspace(-1, 1, N)},
        labels={"sepsis": np.array([0, 1, 0, 0, 1]), "unit": np.array(["MICU", "SICU", "MICU", "CCU", "MICU"])},
    )


def test_default_vitals():
    assert DEFAULT_VITALS == ("HR", "SBP", "DBP", "MAP", "RR", "SPO2", "TEMP")


def test_round_trip_with_factors_and_labels(tmp_path):
    data = sample_data()
    path = tmp_path / "nested" / "dir" / "data.h5"
    write_layer2(path, data)
    back = read_layer2(path)
    assert back.values.dtype == np.float32 and back.masks.dtype == np.float32
    np.testing.assert_array_equal(back.masks, data.masks)
    np.testing.assert_array_equal(back.values, data.values)  # NaN compare equal in the same places
    assert list(back.patient_ids) == list(data.patient_ids)
    assert all(isinstance(p, str) for p in back.patient_ids)
    assert back.vitals == VITALS
    np.testing.assert_allclose(back.factors["level"], data.factors["level"])
    np.testing.assert_array_equal(back.labels["sepsis"], data.labels["sepsis"])
    assert list(back.labels["unit"]) == list(data.labels["unit"])
    assert (back.n_patients, back.seq_len, back.n_vitals) == (N, T, V)


def test_reads_user_style_file(tmp_path):
    a = arrays()
    a["masks"] = a["masks"].astype(np.int64)  # any numeric mask dtype
    a["values"] = np.where(a["masks"] == 1, a["values"], -999.0)  # garbage, not NaN, where unobserved
    data = read_layer2(write_raw(tmp_path / "user.h5", a))
    assert np.isnan(data.values[a["masks"] == 0]).all()
    assert not np.isnan(data.values[a["masks"] == 1]).any()
    assert data.patient_ids[0] == "P0" and data.factors is None and data.labels is None


def test_reads_variable_length_utf8_ids(tmp_path):
    a = arrays()
    ids = ["Zoë-1", "P1", "P2", "P3", "患者4"]
    a["patient_index"] = np.array(ids, dtype=h5py.string_dtype())
    data = read_layer2(write_raw(tmp_path / "vlen.h5", a))
    assert list(data.patient_ids) == ids
    path = tmp_path / "again.h5"
    write_layer2(path, data)  # non-ASCII ids survive a round trip as UTF-8 bytes
    assert list(read_layer2(path).patient_ids) == ids


def test_subset_selects_rows_everywhere():
    data = sample_data()
    sub = data.subset(np.array([3, 1]))
    assert sub.n_patients == 2 and list(sub.patient_ids) == ["P3", "P1"]
    np.testing.assert_array_equal(sub.values, data.values[[3, 1]])
    np.testing.assert_array_equal(sub.factors["level"], data.factors["level"][[3, 1]])
    np.testing.assert_array_equal(sub.labels["sepsis"], [0, 1])


def _bad_mask_value(a):
    a["masks"] = a["masks"].copy()
    a["masks"][1, 2, 0] = 0.5


def _inf_value(a):
    a["masks"][2, 3, 1] = 1
    a["values"][2, 3, 1] = np.inf


def _nan_observed(a):
    a["masks"][2, 3, 1] = 1
    a["values"][2, 3, 1] = np.nan


def _unobserved_patient(a):
    a["masks"][3] = 0


CASES = {  # id: (how to break a valid file, words the one-line message must contain)
    "missing values": (lambda a: a.pop("values"), ["'values'", "missing"]),
    "missing masks": (lambda a: a.pop("masks"), ["'masks'", "missing"]),
    "missing patient_index": (lambda a: a.pop("patient_index"), ["'patient_index'", "missing"]),
    "missing vital_index": (lambda a: a.pop("vital_index"), ["'vital_index'", "missing"]),
    "values rank 2": (lambda a: a.update(values=a["values"][:, :, 0]), ["'values'", "3-D"]),
    "mask shape": (lambda a: a.update(masks=a["masks"][:, :, :2]), ["'masks'", "(5, 6, 2)", "(5, 6, 3)"]),
    "patient_index length": (lambda a: a.update(patient_index=a["patient_index"][:4]), ["'patient_index'", "4"]),
    "vital_index length": (lambda a: a.update(vital_index=a["vital_index"][:2]), ["'vital_index'", "2"]),
    "duplicate id": (lambda a: a["patient_index"].__setitem__(4, b"P1"), ["'patient_index'", "'P1'"]),
    "undecodable id": (lambda a: a["patient_index"].__setitem__(2, b"\xff\xfe"), ["'patient_index'", "UTF-8"]),
    "numeric ids": (lambda a: a.update(patient_index=np.arange(N)), ["'patient_index'", "strings"]),
    "inf": (_inf_value, ["'values'", "infinite", "'P2'"]),
    "nan observed": (_nan_observed, ["'values'", "NaN", "observed", "'P2'"]),
    "mask not 0/1": (_bad_mask_value, ["'masks'", "0 and 1", "0.5"]),
    "patient never observed": (_unobserved_patient, ["'P3'", "no observation"]),
    "zero patients": (
        lambda a: a.update(values=a["values"][:0], masks=a["masks"][:0], patient_index=np.array([], dtype="S2")),
        ["'values'", "zero patients"],
    ),
}


@pytest.mark.parametrize("breaker, words", CASES.values(), ids=CASES.keys())
def test_validation_errors_name_dataset_in_one_line(tmp_path, breaker, words):
    a = arrays()
    breaker(a)
    path = write_raw(tmp_path / "bad.h5", a)
    with pytest.raises(VaelabError) as info:
        read_layer2(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    for word in words:
        assert word in message


@pytest.mark.parametrize("group", ["factors", "labels"])
def test_group_member_of_wrong_length(tmp_path, group):
    path = write_raw(tmp_path / "bad.h5", arrays(), {group: {"x": np.zeros(N + 1)}})
    with pytest.raises(VaelabError, match=rf"dataset '{group}/x' has shape \(6,\) but there are 5 patients"):
        read_layer2(path)


def test_missing_file(tmp_path):
    with pytest.raises(VaelabError, match="not found"):
        read_layer2(tmp_path / "nope.h5")


@pytest.mark.parametrize("content", [b"", b"id,hr\n1,80\n"], ids=["empty", "csv"])
def test_not_hdf5(tmp_path, content):
    path = tmp_path / "data.h5"
    path.write_bytes(content)
    with pytest.raises(VaelabError, match="not an HDF5 file"):
        read_layer2(path)


def test_truncated_file(tmp_path):
    path = write_raw(tmp_path / "data.h5", arrays())
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(VaelabError) as info:
        read_layer2(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_write_refuses_invalid_data(tmp_path):
    data = sample_data()
    data.masks = data.masks[:, :, :2]
    path = tmp_path / "out.h5"
    with pytest.raises(VaelabError, match="'masks' has shape"):
        write_layer2(path, data)
    assert list(tmp_path.iterdir()) == []


def test_write_into_unwritable_location_leaves_nothing(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where a directory should be")
    with pytest.raises(VaelabError) as info:
        write_layer2(blocker / "data.h5", sample_data())
    assert "blocker" in str(info.value) and "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "data.h5"
    write_layer2(path, sample_data())
    before = path.read_bytes()
    bad = sample_data()
    bad.labels = {"note": np.array([{"a": 1}] * N, dtype=object)}  # HDF5 cannot store this
    with pytest.raises(VaelabError, match="could not write"):
        write_layer2(path, bad)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.h5"]


def test_successful_write_leaves_no_temp(tmp_path):
    write_layer2(tmp_path / "data.h5", sample_data())
    write_layer2(tmp_path / "data.h5", sample_data())  # overwrite in place
    assert [p.name for p in tmp_path.iterdir()] == ["data.h5"]
