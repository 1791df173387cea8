"""`python experiments/peers/ts2vec.py` (the TS2Vec peer of issue 16) on a small Layer-2 file written
here, as a real subprocess: it writes the latents and run.json, `python -m vaelab.probe` scores them,
and a bad input is one line naming the file, exit 2."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from vaelab.data.latents import read_latents
from vaelab.data.layer2 import write_layer2
from vaelab.data.synthetic import generate_synthetic
from vaelab.models.multiscale import MultiScaleConfig
from vaelab.probe import TABLE_FILE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("pypots") is None, reason="needs PyPOTS: pip install -e '.[peers]' (the test extra has it)"
    ),
]

SCRIPT = REPO / "experiments" / "peers" / "ts2vec.py"
N, T = 120, 24


def run(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300, env=env)


def write_cohort(tmp_path):
    """Synthetic stays with labels that depend on the data: a high mean heart rate, and its value."""
    data = generate_synthetic(N, T, seed=0)
    mean_hr = np.nanmean(data.values[:, :, data.vitals.index("HR")], axis=1)
    data.factors = None
    data.labels = {"sepsis": (mean_hr > np.median(mean_hr)).astype(np.int8), "age": mean_hr.astype(np.float32)}
    path = tmp_path / "cohort.h5"
    write_layer2(path, data)
    return path, data


def test_trains_writes_latents_that_the_probe_table_scores(tmp_path):
    layer2, data = write_cohort(tmp_path)
    out = tmp_path / "ts2vec"
    proc = run(SCRIPT, "--data", layer2, "--out", out, "--epochs", "2", "--dims", "8", "--batch-size", "32", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Epoch 002" in proc.stderr  # PyPOTS's per-epoch log
    assert "ai4ts" not in proc.stdout  # PyPOTS's import banner goes to stderr

    latents = read_latents(out / "ts2vec_latents.h5")
    assert latents["mu"].shape == (N, 8) and np.isfinite(latents["mu"]).all()
    assert list(latents["patient_ids"]) == [str(p) for p in data.patient_ids]
    assert len(np.unique(latents["mu"].round(6), axis=0)) == N  # every stay its own vector
    summary = json.loads((out / "run.json").read_text())
    assert summary["stays"] == {"in_file": N, "used": N, "train": 96, "val": 24}
    assert summary["settings"]["missing"] == "mask-channels" and summary["settings"]["n_features"] == 14
    assert summary["settings"]["labels_file"] == str(layer2) and summary["train_seconds"] > 0

    proc = run("-m", "vaelab.probe", out / "ts2vec_latents.h5", "--labels", layer2, "--resamples", "20", "--no-plot", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    table = pd.read_csv(out / TABLE_FILE)
    embedding = table[table.features == "embedding"]
    assert set(embedding.label) == {"sepsis", "age"} and set(embedding.metric) == {"auroc", "auprc", "r2"}
    assert np.isfinite(embedding.value).all()


def test_limit_writes_the_layer2_file_of_its_stays(tmp_path):
    layer2, data = write_cohort(tmp_path)
    out = tmp_path / "limited"
    proc = run(SCRIPT, "--data", layer2, "--out", out, "--epochs", "1", "--limit", "40", "--missing", "nan", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "run.json").read_text())
    assert summary["stays"]["used"] == 40 and summary["settings"]["n_features"] == data.n_vitals
    assert summary["settings"]["labels_file"] == str(out / "layer2.h5") and (out / "layer2.h5").is_file()
    assert read_latents(out / "ts2vec_latents.h5")["mu"].shape == (40, MultiScaleConfig().latent_dim)  # --dims defaults to it


@pytest.mark.parametrize("name, content, message", [("missing.h5", None, "file not found"), ("text.h5", "not hdf5", "not an HDF5 file")])
def test_a_bad_input_is_one_line_and_exit_2(tmp_path, name, content, message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    proc = run(SCRIPT, "--data", path, "--out", tmp_path / "out", cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0] == f"vaelab: error: {path}: {message}"
    assert not (tmp_path / "out").exists()
