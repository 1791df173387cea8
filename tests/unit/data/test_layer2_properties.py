"""Random corruptions of a valid Layer-2 file, drawn by hypothesis: each one either loads and trains,
or fails with one VaelabError line that starts with the file's path, leaving at most metrics.json
(``status: failed``) in the run directory: no temporary file, no latents or checkpoint.

Runs go through ``vaelab.runs.pipeline.run`` on real files (in memory or streamed, drawn too). Most
corruptions stop at the reader's checks; the few files that load train one epoch of a tiny model.
The examples are derandomized, so CI runs the same ones every time.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from vaelab.data.synthetic import generate_synthetic
from vaelab.errors import VaelabError
from vaelab.io import CHECKPOINT_FILE, LATENTS_FILE, METRICS_FILE
from vaelab.runs.config import validate
from vaelab.runs.pipeline import run

N, T, V = 24, 48, 7
SMALL_RUN = [
    "trainer=debug",
    "trainer.epochs=1",
    "trainer.batch_size=8",
    "model.latent_dim=4",
    "model.base_channels=8",
    "quiet=true",
    "eval.plots=false",
]
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,  # derandomized: nothing to replay, and no .hypothesis/ in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],  # compose_config is stateless
)
GROUP = object()  # a dataset path mapped to GROUP is written as an empty HDF5 group
REQUIRED = ("values", "masks", "patient_index", "vital_index")


def valid_file() -> dict:
    """A valid file's datasets by HDF5 path, written the way a user's own pipeline would; a value is
    an array, an (array, dtype) pair, h5py.Empty or GROUP."""
    data = generate_synthetic(N, T, seed=0)
    datasets = {
        "values": data.values,
        "masks": data.masks,
        "patient_index": np.array(data.patient_ids).astype("S"),
        "vital_index": np.array(data.vitals).astype("S"),
    }
    datasets.update({f"factors/{name}": arr for name, arr in data.factors.items()})
    datasets["labels/sepsis"] = (np.arange(N) % 3 == 0).astype(np.int8)  # eval.probe_label
    datasets["labels/unit"] = np.array([b"MICU", b"SICU", b"CCU"] * (N // 3))
    return datasets


def write(path: Path, datasets: dict) -> Path:
    with h5py.File(path, "w") as f:
        for name, data in datasets.items():
            if data is GROUP:
                f.create_group(name)
            elif isinstance(data, tuple):
                f.create_dataset(name, data=data[0], dtype=data[1])
            else:
                f.create_dataset(name, data=data)
    return path


def vlen(strings, encoding: str = "utf-8") -> tuple[np.ndarray, object]:
    """h5py variable-length strings (str or raw bytes entries), as ``write`` takes them."""
    return np.array(strings, dtype=object), h5py.string_dtype(encoding)


_EXPERIMENTS: dict[bool, object] = {}


def experiment(compose_config, path: Path, stream: bool):
    """The tiny run's validated config for ``path``; composed once per mode (Hydra takes ~0.2 s)."""
    if stream not in _EXPERIMENTS:
        overrides = ["data=h5", "data.path=unset.h5", f"data.stream={str(stream).lower()}", *SMALL_RUN]
        _EXPERIMENTS[stream] = validate(compose_config(overrides))
    base = _EXPERIMENTS[stream]
    return dataclasses.replace(base, data=dataclasses.replace(base.data, path=str(path)))


def check_run(compose_config, path: Path, stream: bool) -> None:
    """The property: ``path`` trains, or fails with one line naming it and leaves only metrics.json."""
    out = path.parent / "run"
    try:
        result = run(experiment(compose_config, path, stream), out)
    except VaelabError as exc:
        message = str(exc)
        assert "\n" not in message and message.startswith(f"{path}: "), message
        assert files_in(out) <= {METRICS_FILE}, files_in(out)
        metrics = json.loads((out / METRICS_FILE).read_text())
        assert metrics["status"] == "failed" and metrics["error"] == message
        note(f"refused: {problem(message, path)}")
        return
    assert result["status"] == "ok"
    assert {METRICS_FILE, CHECKPOINT_FILE, LATENTS_FILE} <= files_in(out)
    assert not [name for name in files_in(out) if name.endswith(".tmp")]
    note("trained")


def note(outcome: str) -> None:
    """An outcome for hypothesis's statistics (the plain tests below call check_run too)."""
    if currently_in_test_context():
        event(outcome)


def check_file(compose_config, datasets: dict, stream: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check_run(compose_config, write(Path(tmp) / "layer2.h5", datasets), stream)


def files_in(directory: Path) -> set[str]:
    return {p.name for p in directory.rglob("*")} if directory.exists() else set()


def problem(message: str, path: Path) -> str:
    """The message without the path, ids and numbers: what hypothesis's statistics group by."""
    return re.sub(r"'[^']*'|\(.*\)|\d+", "#", message[len(str(path)) + 2 :])[:70]


def as_dtype(array: np.ndarray, dtype: str):
    """``array`` stored with another dtype: numbers as ints, floats or bools, or as strings,
    complex or compound types (numbers a reader must refuse)."""
    if dtype in ("S8", "vlen"):
        strings = array.astype(str) if array.dtype.kind != "S" else np.char.decode(array)
        return strings.astype("S8") if dtype == "S8" else vlen(strings.tolist())
    if dtype == "compound":
        out = np.zeros(array.shape, dtype=[("x", array.dtype)])
        out["x"] = array
        return out
    numbers = np.arange(len(array)) if array.dtype.kind == "S" else np.nan_to_num(array)
    if np.dtype(dtype).kind in "iub":
        numbers = numbers.astype(np.int64)  # wraps silently where the dtype is too narrow
    return numbers.astype(dtype)


DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "float16", "float64", "bool", "complex64", "S8", "vlen", "compound"]


@EXAMPLES
@given(target=st.sampled_from(REQUIRED), dtype=st.sampled_from(DTYPES), stream=st.booleans())
def test_any_dtype_loads_or_is_refused(compose_config, target, dtype, stream):
    datasets = valid_file()
    datasets[target] = as_dtype(datasets[target], dtype)
    check_file(compose_config, datasets, stream)


@st.composite
def reshaped(draw, datasets: dict) -> dict:
    """One shape corruption: a wrong rank, one wrong length, zero or too few patients/hours/vitals,
    an empty (null) dataspace or a group where a dataset belongs."""
    kind = draw(st.sampled_from(["rank", "length", "zero patients", "zero hours", "zero vitals", "short", "null", "group"]))
    target = draw(st.sampled_from(REQUIRED))
    arr = datasets[target]
    if kind == "rank":
        axis = draw(st.integers(0, arr.ndim - 1))
        datasets[target] = np.expand_dims(arr, axis) if draw(st.booleans()) else np.take(arr, 0, axis=axis)
    elif kind == "length":
        axis = draw(st.integers(0, arr.ndim - 1))
        k = draw(st.integers(0, 2 * arr.shape[axis]).filter(lambda k: k != arr.shape[axis]))
        datasets[target] = np.take(arr, np.arange(k) % arr.shape[axis], axis=axis)
    elif kind == "zero patients":
        datasets.update({name: arr[:0] for name, arr in datasets.items() if name != "vital_index"})
    elif kind in ("zero hours", "short"):
        hours = 0 if kind == "zero hours" else draw(st.integers(1, 23))
        datasets.update(values=datasets["values"][:, :hours], masks=datasets["masks"][:, :hours])
    elif kind == "zero vitals":
        datasets.update(values=datasets["values"][..., :0], masks=datasets["masks"][..., :0], vital_index=datasets["vital_index"][:0])
    elif kind == "null":
        datasets[target] = h5py.Empty(arr.dtype)
    else:
        datasets[target] = GROUP
    return datasets


@EXAMPLES
@given(data=st.data(), stream=st.booleans())
def test_any_shape_loads_or_is_refused(compose_config, data, stream):
    check_file(compose_config, data.draw(reshaped(valid_file())), stream)


def entries(draw, where: np.ndarray) -> tuple[np.ndarray, ...]:
    """1 to 5 positions among the True entries of ``where``."""
    positions = np.argwhere(where)
    picks = draw(st.lists(st.integers(0, len(positions) - 1), min_size=1, max_size=5))
    return tuple(positions[picks].T)


@EXAMPLES
@given(
    data=st.data(),
    target=st.sampled_from(["values", "masks"]),
    special=st.sampled_from([np.nan, np.inf, -np.inf]),
    place=st.sampled_from(["observed", "unobserved"]),
    stream=st.booleans(),
)
def test_nan_and_inf_anywhere_load_or_are_refused(compose_config, data, target, special, place, stream):
    """NaN where unobserved is how the format marks missing values; anything else is refused."""
    datasets = valid_file()
    observed = datasets["masks"] == 1
    datasets[target][entries(data.draw, observed if place == "observed" else ~observed)] = special
    check_file(compose_config, datasets, stream)


@EXAMPLES
@given(
    data=st.data(),
    value=st.sampled_from([2.0, -1.0, 0.5, np.nan, 1 + 1e-6, 0.999, 255.0, -0.0, 1e30]),
    kind=st.sampled_from(["entries", "entries", "entries", "patient unobserved", "all observed"]),
    stream=st.booleans(),
)
def test_any_mask_value_loads_or_is_refused(compose_config, data, value, kind, stream):
    datasets = valid_file()
    masks = datasets["masks"]
    if kind == "entries":
        masks[entries(data.draw, np.ones_like(masks, dtype=bool))] = value
    elif kind == "patient unobserved":
        masks[data.draw(st.integers(0, N - 1))] = 0
    else:
        masks[:] = 1  # unobserved values are NaN, now said to be observed
    check_file(compose_config, datasets, stream)


# What an id or a vital name can be instead of a plain ASCII string.
BAD_STRINGS = {
    "empty": b"",
    "non-UTF-8": b"\xff\xfe",
    "latin-1": "Zoë".encode("latin-1"),
    "newline": b"a\nb",
    "null inside": b"a\x00b",
    "whitespace": b" ",
    "long": b"x" * 1000,
    "unicode": "患者-é-🙂".encode(),
    "lowercase hr": b"hr",
    "unknown vital": b"GLUCOSE",
}


@st.composite
def renamed(draw, datasets: dict, name: str) -> dict:
    """One corruption of an index: an entry replaced (BAD_STRINGS or another entry: a duplicate),
    an entry added or dropped, numbers instead of strings, or variable-length strings."""
    entries_ = list(datasets[name])
    kind = draw(st.sampled_from(["replace", "replace", "replace", "duplicate", "drop", "add", "numeric", "vlen", "vlen non-UTF-8"]))
    i = draw(st.integers(0, len(entries_) - 1))
    if kind == "replace":
        entries_[i] = BAD_STRINGS[draw(st.sampled_from(sorted(BAD_STRINGS)))]
    elif kind == "duplicate":
        entries_[i] = entries_[draw(st.integers(0, len(entries_) - 1).filter(lambda j: j != i))]
    elif kind == "drop":
        del entries_[i]
    elif kind == "add":
        entries_.append(b"EXTRA")
    if kind == "numeric":
        datasets[name] = np.arange(len(entries_), dtype=draw(st.sampled_from(["int64", "float32"])))
    elif kind.startswith("vlen"):
        if kind == "vlen non-UTF-8":
            entries_[i] = b"\xc3\x28"
        datasets[name] = vlen(entries_)
    else:
        datasets[name] = np.array(entries_, dtype="S")
    return datasets


@EXAMPLES
@given(data=st.data(), stream=st.booleans())
def test_any_patient_ids_load_or_are_refused(compose_config, data, stream):
    check_file(compose_config, data.draw(renamed(valid_file(), "patient_index")), stream)


@EXAMPLES
@given(data=st.data(), stream=st.booleans())
def test_any_vital_names_load_or_are_refused(compose_config, data, stream):
    check_file(compose_config, data.draw(renamed(valid_file(), "vital_index")), stream)


ENCODINGS = ["utf-8", "utf-8 vlen", "latin-1", "utf-16", "utf-8-sig", "cp1252", "raw vlen"]
names = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1, max_size=6)


@EXAMPLES
@given(
    name=st.sampled_from(["patient_index", "vital_index"]),
    encoding=st.sampled_from(ENCODINGS),
    data=st.data(),
    stream=st.booleans(),
)
def test_any_string_encoding_loads_or_is_refused(compose_config, name, encoding, data, stream):
    """Any text, stored in any encoding: UTF-8 (fixed or variable length) loads; other bytes are
    refused where they are not valid UTF-8."""
    datasets = valid_file()
    texts = data.draw(st.lists(names, min_size=len(datasets[name]), max_size=len(datasets[name]), unique=True))
    if encoding == "utf-8 vlen":
        datasets[name] = vlen(texts)
    else:
        codec = "utf-8" if encoding == "raw vlen" else encoding
        raw = [text.encode(codec, errors="replace") for text in texts]
        datasets[name] = vlen(raw, "ascii") if encoding == "raw vlen" else np.array(raw, dtype="S")
    check_file(compose_config, datasets, stream)


@EXAMPLES
@given(fraction=st.floats(0.0, 1.0, exclude_max=True), stream=st.booleans())
def test_a_file_truncated_anywhere_is_refused(compose_config, fraction, stream):
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / "layer2.h5", valid_file())
        content = path.read_bytes()
        path.write_bytes(content[: int(fraction * len(content))])
        check_run(compose_config, path, stream)


@st.composite
def regrouped(draw, datasets: dict) -> dict:
    """One corruption of factors/ or labels/: a member of the wrong length or rank, NaN or Inf,
    strings, non-UTF-8 bytes, a nested group, or the group itself a dataset or empty. The probe's
    labels/sepsis is drawn too: a run refuses a probe label it cannot use before training."""
    group = draw(st.sampled_from(["factors", "labels"]))
    members = sorted(name for name in datasets if name.startswith(f"{group}/"))
    kind = draw(st.sampled_from(["length", "length", "rank", "scalar", "nan", "inf", "strings", "non-UTF-8", "nested", "dataset", "empty"]))
    member = draw(st.sampled_from(members))
    arr = datasets[member]
    if kind == "length":
        datasets[member] = np.resize(arr, draw(st.integers(0, 2 * N).filter(lambda k: k != N)))
    elif kind == "rank":
        datasets[member] = np.stack([arr, arr], axis=1)
    elif kind == "scalar":
        datasets[member] = arr[0]
    elif kind in ("nan", "inf"):
        arr = np.zeros(N) if arr.dtype.kind == "S" else arr.astype(np.float64)
        arr[draw(st.integers(0, N - 1))] = np.nan if kind == "nan" else np.inf
        datasets[member] = arr
    elif kind == "strings":
        datasets[member] = np.array([b"yes", b"no"] * (N // 2), dtype="S")
    elif kind == "non-UTF-8":
        datasets[member] = np.array([b"\xff"] + [b"ok"] * (N - 1), dtype="S")
    elif kind == "nested":
        datasets[f"{group}/extra/{member.split('/')[1]}"] = arr
    elif kind == "empty":
        for name in members:
            del datasets[name]
        datasets[group] = GROUP
    else:
        for name in members:
            del datasets[name]
        datasets[group] = arr
    return datasets


@EXAMPLES
@given(data=st.data(), stream=st.booleans())
def test_any_factors_or_labels_load_or_are_refused(compose_config, data, stream):
    check_file(compose_config, data.draw(regrouped(valid_file())), stream)


# Found by the properties above; refused outside the reader, by the run (runs/pipeline.py), naming the file.


def test_a_vital_never_observed_names_the_file(compose_config, tmp_path):
    datasets = valid_file()
    datasets["masks"][..., 0] = 0
    check_run(compose_config, write(tmp_path / "layer2.h5", datasets), stream=False)


def test_two_patients_name_the_file(compose_config, tmp_path):
    datasets = {name: arr[:2] if name != "vital_index" else arr for name, arr in valid_file().items()}
    check_run(compose_config, write(tmp_path / "layer2.h5", datasets), stream=False)


@pytest.mark.parametrize("label", [np.array([b"yes", b"no"] * (N // 2)), np.where(np.arange(N) == 0, np.nan, np.arange(N) % 2)])
def test_a_probe_label_that_is_not_binary_is_refused_before_training(compose_config, tmp_path, label):
    datasets = valid_file()
    datasets["labels/sepsis"] = label
    check_run(compose_config, write(tmp_path / "layer2.h5", datasets), stream=False)
