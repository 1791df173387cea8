"""Layer-2: the one on-disk format for hourly vital signs (an HDF5 file).

Layout (N patients, T hours, V vitals):

    values          (N, T, V) float, physiological units, NaN allowed where unobserved
    masks           (N, T, V) numeric 0/1, 1 = observed
    patient_index   (N,) unique non-empty UTF-8 strings (fixed-length bytes 'S' or h5py variable-length str)
    vital_index     (V,) unique non-empty UTF-8 strings
    factors/<name>  (N,) finite float, optional: true generating factors (synthetic data)
    labels/<name>   (N,) optional: per-patient labels (e.g. sepsis)

Everything is checked on read, so a bad file fails at load time with one line naming the file, the
dataset and the problem, instead of as NaN losses hours into training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from ..errors import VaelabError
from ..io import atomic_path

DEFAULT_VITALS: tuple[str, ...] = ("HR", "SBP", "DBP", "MAP", "RR", "SPO2", "TEMP")

_REQUIRED = ("values", "masks", "patient_index", "vital_index")
PATIENT_GROUPS = ("factors", "labels")  # optional groups of per-patient arrays (read_group)


@dataclass
class Layer2Data:
    """Hourly vitals of N patients in memory; `values` is NaN wherever `masks` is 0."""

    values: np.ndarray  # (N, T, V) float32
    masks: np.ndarray  # (N, T, V) float32, 1 = observed
    patient_ids: np.ndarray  # (N,) str
    vitals: tuple[str, ...]  # (V,)
    factors: dict[str, np.ndarray] | None = None  # name -> (N,) float
    labels: dict[str, np.ndarray] | None = None  # name -> (N,)

    @property
    def n_patients(self) -> int:
        return int(self.values.shape[0])

    @property
    def seq_len(self) -> int:
        return int(self.values.shape[1])

    @property
    def n_vitals(self) -> int:
        return int(self.values.shape[2])

    def subset(self, index) -> Layer2Data:
        """The patients at `index` (integer array), with their factors and labels."""
        index = np.asarray(index)

        def rows(group: dict[str, np.ndarray] | None) -> dict[str, np.ndarray] | None:
            return None if group is None else {name: arr[index] for name, arr in group.items()}

        return Layer2Data(
            values=self.values[index],
            masks=self.masks[index],
            patient_ids=np.asarray(self.patient_ids)[index],
            vitals=tuple(self.vitals),
            factors=rows(self.factors),
            labels=rows(self.labels),
        )


def vital_columns(available, wanted, source) -> tuple[tuple[str, ...], list[int] | None]:
    """(the vitals kept, their columns in ``available``) for ``data.vitals``; columns None keeps all.

    One check for every reader (in memory and streamed): a vital the file lacks is one line naming
    the file and what it has.
    """
    available = tuple(available)
    if not wanted:
        return available, None
    missing = [v for v in wanted if v not in available]
    if missing:
        raise VaelabError(f"{source}: vital {missing[0]!r} (data.vitals) is not in the file's vital_index {list(available)}")
    return tuple(wanted), [available.index(v) for v in wanted]


def read_layer2(path: str | os.PathLike) -> Layer2Data:
    """Load and validate a Layer-2 file; values come back float32 with NaN where unobserved."""
    path = Path(path)
    with open_layer2(path) as f:
        try:
            data = Layer2Data(
                values=_read_numeric(f["values"], path, np.float32),
                masks=_read_numeric(f["masks"], path),
                patient_ids=read_strings(f["patient_index"], path),
                vitals=tuple(read_strings(f["vital_index"], path)),
                factors=read_group(f, "factors", path),
                labels=read_group(f, "labels", path),
            )
        except OSError as e:  # truncated or corrupt dataset
            raise unreadable(path, e) from e

    observed = _validate(data, path)
    np.copyto(data.values, np.nan, where=~observed)
    data.masks = observed.astype(np.float32)
    return data


def open_layer2(path: Path) -> h5py.File:
    """The Layer-2 file opened read-only, once it is known to exist, be HDF5 and hold the required datasets."""
    return open_hdf5(path, _REQUIRED)


def open_hdf5(path: Path, required: tuple[str, ...], hint: str = "") -> h5py.File:
    """An HDF5 file opened read-only, once it is known to exist, be HDF5 and hold the ``required``
    datasets; each problem is one line naming the file (and the dataset, then ``hint``)."""
    if not path.exists():
        raise VaelabError(f"{path}: file not found")
    if not path.is_file():
        raise VaelabError(f"{path}: not a file")
    try:
        if not h5py.is_hdf5(path):
            raise VaelabError(f"{path}: not an HDF5 file")
        f = h5py.File(path, "r")
        missing = [name for name in required if not isinstance(f.get(name), h5py.Dataset)]
    except OSError as e:  # truncated or corrupt file, permission denied
        raise unreadable(path, e) from e
    if missing:
        f.close()
        raise VaelabError(f"{path}: dataset '{missing[0]}' is missing{hint}")
    return f


def unreadable(path: Path, e: OSError) -> VaelabError:
    """The one line for an HDF5 read that fails (truncated file, unreadable dataset)."""
    return VaelabError(f"{path}: not a readable HDF5 file ({_one_line(e)})")


def write_layer2(path: str | os.PathLike, data: Layer2Data) -> None:
    """Validate and write `data` atomically: readers never see a half-written file."""
    path = Path(path)
    observed = _validate(data, path)
    with atomic_path(path) as tmp:
        try:
            with h5py.File(tmp, "w") as f:
                f.create_dataset("values", data=np.where(observed, data.values, np.nan).astype(np.float32))
                f.create_dataset("masks", data=observed.astype(np.uint8))
                f.create_dataset("patient_index", data=_to_bytes(np.asarray(data.patient_ids, dtype=str)))
                f.create_dataset("vital_index", data=_to_bytes(np.asarray(data.vitals, dtype=str)))
                for group_name in PATIENT_GROUPS:
                    group = getattr(data, group_name)
                    if group is not None:
                        g = f.create_group(group_name)
                        for name, arr in group.items():
                            g.create_dataset(name, data=_to_bytes(arr))
        except TypeError as e:  # a label HDF5 cannot store (atomic_path reports a full disk and other OS errors)
            raise VaelabError(f"{path}: could not write ({_one_line(e)})") from e


def _validate(data: Layer2Data, path: Path) -> np.ndarray:
    """Check every rule of the format; return the boolean observed mask."""
    values, masks = np.asarray(data.values), np.asarray(data.masks)
    ids, vitals = [str(p) for p in data.patient_ids], [str(v) for v in data.vitals]
    check_layout(path, values, masks, ids, vitals)
    observed = check_content(path, values, masks, ids, vitals)
    check_groups(path, {name: getattr(data, name) for name in PATIENT_GROUPS}, len(ids))
    return observed


def check_layout(path: Path, values, masks, ids: list[str], vitals: list[str]) -> None:
    """The rules on dtypes, shapes and index datasets; ``values`` and ``masks`` may be h5py
    datasets (only dtype and shape are read), so a streamed file is checked before any chunk is."""

    def fail(problem: str) -> VaelabError:
        return VaelabError(f"{path}: {problem}")

    for name, arr in (("values", values), ("masks", masks)):
        if arr.dtype.kind not in "biuf":
            raise fail(f"dataset '{name}' is not numeric (dtype {arr.dtype})")
    if values.ndim != 3:
        raise fail(f"dataset 'values' must be 3-D (patients, hours, vitals) but has shape {values.shape}")
    for count, what in zip(values.shape, ("patients", "hours", "vitals")):
        if count == 0:
            raise fail(f"dataset 'values' holds zero {what}")
    n, _, v = values.shape
    if masks.shape != values.shape:
        raise fail(f"dataset 'masks' has shape {masks.shape} but 'values' has {values.shape}")
    if len(ids) != n:
        raise fail(f"dataset 'patient_index' has {len(ids)} entries but 'values' has {n} patients")
    if len(vitals) != v:
        raise fail(f"dataset 'vital_index' has {len(vitals)} entries but 'values' has {v} vitals")
    for name, names in (("patient_index", ids), ("vital_index", vitals)):
        if "" in names:  # a lost id or name: nothing could tell it apart or name it in a message
            raise fail(f"dataset '{name}' entry {names.index('')} is empty")
        unique, counts = np.unique(names, return_counts=True)
        if (counts > 1).any():
            raise fail(f"dataset '{name}' repeats {str(unique[np.argmax(counts > 1)])!r}")


def check_content(path: Path, values: np.ndarray, masks: np.ndarray, ids: list[str], vitals: list[str], scope: str = "") -> np.ndarray:
    """The rules on the numbers, for all patients or one chunk of them (``ids`` are the rows'
    own ids, so a message names the first bad patient; ``scope``, e.g. " in rows 0-99", says
    what a count covers); returns the boolean observed mask."""

    def fail(problem: str) -> VaelabError:
        return VaelabError(f"{path}: {problem}")

    def first(bad: np.ndarray) -> str:
        p, t, k = np.unravel_index(np.argmax(bad), bad.shape)
        return f"patient {ids[p]!r}, hour {t}, vital {vitals[k]!r}"

    observed = masks == 1
    valid = observed | (masks == 0)
    if not valid.all():
        raise fail(f"dataset 'masks' must hold only 0 and 1 but has {masks[~valid][0].item()} at {first(~valid)}")

    if values.dtype.kind == "f":
        infinite = np.isinf(values)
        if infinite.any():
            raise fail(f"dataset 'values' has {_count(infinite.sum(), 'infinite entry')}{scope}, first at {first(infinite)}")
        missing = np.isnan(values) & observed
        if missing.any():
            raise fail(
                f"dataset 'values' has {_count(missing.sum(), 'NaN entry')} where 'masks' says observed{scope}, first at {first(missing)}"
            )
    empty = ~observed.any(axis=(1, 2))
    if empty.any():
        others = f" ({_count(empty.sum(), 'patient')}{scope} have none)" if empty.sum() > 1 else ""
        raise fail(f"patient {ids[np.argmax(empty)]!r} has no observation at all{others}")
    return observed


def check_groups(path: Path, groups: dict[str, dict | None], n: int) -> None:
    """Every dataset of factors/ and labels/ has one entry per patient, and factors are finite: the
    factor probes regress on them after training, too late to refuse a NaN."""
    for group_name, group in groups.items():
        for name, arr in (group or {}).items():
            if np.shape(arr) != (n,):
                raise VaelabError(f"{path}: dataset '{group_name}/{name}' has shape {np.shape(arr)} but there are {n} patients")
            arr = np.asarray(arr)
            if group_name == "factors" and arr.dtype.kind == "f" and not np.isfinite(arr).all():
                bad = int(np.argmax(~np.isfinite(arr)))
                raise VaelabError(f"{path}: dataset 'factors/{name}' has {arr[bad]} at entry {bad} (factors must be finite)")


def _read_numeric(ds: h5py.Dataset, path: Path, dtype=None) -> np.ndarray:
    if ds.dtype.kind not in "biuf":
        raise VaelabError(f"{path}: dataset '{ds.name.lstrip('/')}' is not numeric (dtype {ds.dtype})")
    return ds.astype(dtype)[()] if dtype is not None else ds[()]


def read_strings(ds: h5py.Dataset, path: Path) -> np.ndarray:
    """Decode a 1-D dataset of UTF-8 strings (fixed-length bytes or h5py variable-length str)."""
    name = ds.name.lstrip("/")
    if ds.ndim != 1:
        raise VaelabError(f"{path}: dataset '{name}' must be 1-D but has shape {ds.shape}")
    if h5py.check_string_dtype(ds.dtype) is None:
        raise VaelabError(f"{path}: dataset '{name}' must hold strings (store with .astype('S')), not {ds.dtype}")
    decoded = []
    for i, raw in enumerate(ds[()]):
        try:
            decoded.append(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
        except UnicodeDecodeError:
            raise VaelabError(f"{path}: dataset '{name}' entry {i} is not valid UTF-8 ({bytes(raw)!r})") from None
    return np.array(decoded, dtype=object)


def read_group(f: h5py.File, group_name: str, path: Path) -> dict[str, np.ndarray] | None:
    """Read factors/ or labels/; string labels are decoded, numbers kept (factors as float)."""
    if group_name not in f:
        return None
    group = f[group_name]
    if not isinstance(group, h5py.Group):
        raise VaelabError(f"{path}: '{group_name}' must be a group of (N,) datasets, not a dataset")
    out = {}
    for name, ds in group.items():
        if not isinstance(ds, h5py.Dataset):
            raise VaelabError(f"{path}: '{group_name}/{name}' must be a dataset")
        if group_name == "factors":
            out[name] = _read_numeric(ds, path, np.float64)
        elif h5py.check_string_dtype(ds.dtype) is not None:
            out[name] = read_strings(ds, path)
        else:
            out[name] = ds[()]
    return out


def _to_bytes(arr) -> np.ndarray:
    """Strings become UTF-8 fixed-length bytes (HDF5 has no numpy unicode type); others unchanged."""
    arr = np.asarray(arr)
    if arr.dtype.kind == "U" or (arr.dtype.kind == "O" and all(isinstance(x, str) for x in arr.flat)):
        return np.char.encode(arr.astype(str), "utf-8")
    return arr


def _count(k: int, noun: str) -> str:
    if k == 1:
        return f"1 {noun}"
    return f"{k} {noun[:-1] + 'ies' if noun.endswith('y') else noun + 's'}"


def _one_line(e: Exception) -> str:
    return " ".join(str(e).split())
