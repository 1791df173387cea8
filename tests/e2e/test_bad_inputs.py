"""The bad-input table (README "Bad input"): each mistake gets one line naming the file, dataset or
key and the problem, a non-zero exit, and no partial output."""

import json
import subprocess
import sys

import h5py
import numpy as np
import pytest
from hydra.errors import ConfigCompositionException
from physionet_files import HEADER, psv_text, vitals

from vaelab.data.layer2 import write_layer2
from vaelab.data.synthetic import generate_synthetic
from vaelab.errors import VaelabError
from vaelab.runs.config import validate
from vaelab.runs.pipeline import run

SMALL = ["trainer=debug", "model.latent_dim=4", "model.base_channels=8", "quiet=true"]


def good_arrays(n=24, t=48):
    data = generate_synthetic(n, t, seed=0)
    return {
        "values": data.values,
        "masks": data.masks,
        "patient_index": np.array([p.encode() for p in data.patient_ids], dtype="S"),
        "vital_index": np.array([v.encode() for v in data.vitals], dtype="S"),
    }


def h5_with(tmp_path, change):
    arrays = good_arrays()
    change(arrays)
    path = tmp_path / "layer2.h5"
    with h5py.File(path, "w") as f:
        for name, array in arrays.items():
            if array is not None:
                f.create_dataset(name, data=array)
    return path


def set_(key, fn):
    def change(a):
        a[key] = fn(a)

    return change


def missing(tmp_path):
    return tmp_path / "nope.h5"


def text_file(tmp_path):
    (tmp_path / "notes.h5").write_text("values,masks\n1,2\n")
    return tmp_path / "notes.h5"


def empty_file(tmp_path):
    (tmp_path / "empty.h5").write_bytes(b"")
    return tmp_path / "empty.h5"


def truncated(tmp_path):
    path = h5_with(tmp_path, lambda a: None)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def inf_value(a):
    a["values"][2, 3, 0] = np.inf
    a["masks"][2, 3, 0] = 1


def nan_observed(a):
    a["values"][1, 0, 0] = np.nan
    a["masks"][1, 0, 0] = 1


def patient_without_observation(a):
    a["masks"][5] = 0


def duplicate_ids(a):
    a["patient_index"][3] = a["patient_index"][2]


H5_CASES = [
    ("missing file", missing, "nope.h5"),
    ("not an HDF5 file", text_file, "not an HDF5 file"),
    ("empty file", empty_file, "empty.h5"),
    ("truncated HDF5", truncated, "layer2.h5"),
    ("missing values", lambda p: h5_with(p, set_("values", lambda a: None)), "'values'"),
    ("missing masks", lambda p: h5_with(p, set_("masks", lambda a: None)), "'masks'"),
    ("missing patient_index", lambda p: h5_with(p, set_("patient_index", lambda a: None)), "'patient_index'"),
    ("missing vital_index", lambda p: h5_with(p, set_("vital_index", lambda a: None)), "'vital_index'"),
    ("wrong rank", lambda p: h5_with(p, set_("values", lambda a: a["values"][:, :, 0])), "'values'"),
    ("values/masks shapes differ", lambda p: h5_with(p, set_("masks", lambda a: a["masks"][:, :, :6])), "'masks'"),
    ("vital_index length != V", lambda p: h5_with(p, set_("vital_index", lambda a: a["vital_index"][:5])), "'vital_index'"),
    ("duplicate patient ids", lambda p: h5_with(p, duplicate_ids), "repeats 'S00002'"),
    ("Inf in values", lambda p: h5_with(p, inf_value), "'values'"),
    ("NaN where the mask says observed", lambda p: h5_with(p, nan_observed), "NaN"),
    ("masks not 0/1", lambda p: h5_with(p, set_("masks", lambda a: a["masks"] * 2)), "'masks'"),
    ("a patient with no observation", lambda p: h5_with(p, patient_without_observation), "S00005"),
    (
        "sequence shorter than the models allow",
        lambda p: h5_with(p, lambda a: a.update(values=a["values"][:, :12], masks=a["masks"][:, :12])),
        "shorter than the 24 h",
    ),
]


def run_in_process(compose_config, overrides, out):
    experiment = validate(compose_config(overrides))
    return run(experiment, out)


@pytest.mark.parametrize("case, make, fragment", H5_CASES, ids=[c[0] for c in H5_CASES])
def test_bad_layer2_files(compose_config, tmp_path, case, make, fragment):
    path = make(tmp_path)
    out = tmp_path / "run"
    with pytest.raises(VaelabError) as err:
        run_in_process(compose_config, ["data=h5", f"data.path={path}", *SMALL], out)
    message = str(err.value)
    assert fragment in message and "\n" not in message
    assert str(path) in message or path.name in message
    leftovers = {p.name for p in out.iterdir()} if out.exists() else set()
    assert leftovers <= {"metrics.json"}  # a complete record of the failure, nothing half-written


def test_too_few_patients_for_the_split_are_refused(compose_config, tmp_path):
    with pytest.raises(VaelabError, match="at least 2 are needed"):
        write_layer2(tmp_path / "two.h5", generate_synthetic(2, 48))
        run_in_process(compose_config, ["data=h5", f"data.path={tmp_path / 'two.h5'}", *SMALL], tmp_path / "a")


@pytest.mark.parametrize("stream", [False, True])
def test_a_cohort_smaller_than_a_batch_trains_with_the_whole_split_and_says_so(compose_config, tmp_path, caplog, stream):
    """A 10-patient pilot file with the default batch of 64: 8 training patients form each batch."""
    import logging

    write_layer2(tmp_path / "ten.h5", generate_synthetic(10, 48))
    overrides = ["data=h5", f"data.path={tmp_path / 'ten.h5'}", f"data.stream={str(stream).lower()}", "trainer.batch_size=64", *SMALL]
    with caplog.at_level(logging.INFO, logger="vaelab"):
        metrics = run_in_process(compose_config, overrides, tmp_path / "run")
    assert metrics["status"] == "ok" and metrics["n_train"] == 8 and metrics["batch_size"] == 8
    note = "trainer.batch_size=64 is more than the 8 training patients: each batch is the whole training split"
    assert metrics["notes"] == [note]
    assert [r.getMessage() for r in caplog.records].count(f"note: {note}") == 1
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["notes"] == [note]


@pytest.mark.parametrize(
    "content, fragment",
    [
        (psv_text([{**vitals(), "ICULOS": 1}], header=[c for c in HEADER if c != "HR"]), "HR"),
        (psv_text([{**vitals(), "ICULOS": 1}]).replace("|80|", "|eighty|", 1), "eighty"),
    ],
    ids=["psv wrong header", "psv non-numeric cell"],
)
def test_malformed_psv(compose_config, tmp_path, content, fragment):
    source = tmp_path / "psv"
    source.mkdir()
    (source / "p000001.psv").write_text(content)
    with pytest.raises(VaelabError) as err:
        run_in_process(
            compose_config, ["data=physionet2019", f"data.source={source}", f"data.cache_dir={tmp_path}", *SMALL], tmp_path / "run"
        )
    assert "p000001.psv" in str(err.value) and fragment in str(err.value) and "\n" not in str(err.value)


def test_config_value_out_of_range_and_unknown_key(compose_config):
    with pytest.raises(VaelabError, match="config schedule.cycle_epochs"):
        validate(compose_config(["schedule.cycle_epochs=5"]))
    with pytest.raises(ConfigCompositionException, match="learning_rate"):
        compose_config(["trainer.learning_rate=0.1"])


@pytest.mark.slow
@pytest.mark.parametrize(
    "overrides, fragment",
    [
        (["data=h5", "data.path=/no/such/file.h5"], "/no/such/file.h5"),
        (["loss.free_bits=-1"], "config loss.free_bits: must be >= 0"),
        (["trainer.learning_rate=0.1"], "learning_rate"),
        (["hydra.run.dir=/proc/version/run"], "/proc/version/run: output directory is not writable"),
    ],
    ids=["missing file", "out of range", "unknown key", "unwritable output"],
)
def test_the_cli_prints_one_line_and_exits_non_zero(tmp_path, overrides, fragment):
    data = [] if "data=h5" in overrides else ["data.n_patients=24", "data.seq_len=48"]
    cmd = [sys.executable, "-m", "vaelab", f"hydra.run.dir={tmp_path / 'run'}", *data, *SMALL, *overrides]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert fragment in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run" / "vae_latents.h5").exists()


def test_a_checkpoint_of_another_model_layout_is_one_line(tmp_path):
    from vaelab.data.prepare import Normalizer
    from vaelab.errors import VaelabError
    from vaelab.models import build_model
    from vaelab.training.checkpoint import LEGACY_OFF, load_checkpoint, save_checkpoint

    # a checkpoint of the older flat layout: build_model's keyword arguments, options off then left out
    args = dict(model_type="multiscale_conv1d", input_dim=2, seq_len=48, latent_dim=4, base_channels=8)
    model = build_model("multiscale_conv1d", 2, 48, latent_dim=4, base_channels=8, **LEGACY_OFF)
    normalizer = Normalizer([0.0, 0.0], [1.0, 1.0], ["HR", "SBP"])
    save_checkpoint(tmp_path / "ok.pt", model, args, normalizer, {})
    assert load_checkpoint(tmp_path / "ok.pt")[0].latent_dim == 4
    save_checkpoint(tmp_path / "old.pt", model, {**args, "spectral_head": True}, normalizer, {})  # weights lack the head
    with pytest.raises(VaelabError, match=r"old\.pt: its weights do not fit this vaelab's multiscale_conv1d model") as err:
        load_checkpoint(tmp_path / "old.pt")
    assert "\n" not in str(err.value)


def test_a_vital_the_file_lacks_is_named_in_memory_too():
    from vaelab.data.sources import select_vitals
    from vaelab.data.synthetic import generate_synthetic
    from vaelab.errors import VaelabError

    data = generate_synthetic(n_patients=4, seq_len=24, vitals=("HR", "SBP", "TEMP"))
    kept = select_vitals(data, ["TEMP", "HR"], "f.h5")
    assert kept.vitals == ("TEMP", "HR") and (kept.values[..., 0] == data.values[..., 2])[data.masks[..., 2] > 0].all()
    assert select_vitals(data, None, "f.h5") is data
    with pytest.raises(VaelabError, match=r"f\.h5: vital 'MAP' \(data.vitals\) is not in the file's vital_index \['HR', 'SBP', 'TEMP'\]"):
        select_vitals(data, ["HR", "MAP"], "f.h5")
