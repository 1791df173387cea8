"""`python -m vaelab.probe LATENTS.h5 --labels LAYER2.h5` on real files written here: the table printed
and written (CSV, PNG), stays matched by id, and each bad input one line naming the file, exit 2."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from vaelab.data.latents import write_latents
from vaelab.data.layer2 import write_layer2
from vaelab.data.synthetic import generate_synthetic
from vaelab.evaluation.probe_table import FEATURE_SETS, PROBES
from vaelab.probe import PLOT_FILE, TABLE_FILE, main

pytestmark = pytest.mark.slow

N, T = 160, 12


def write_inputs(tmp_path, labels=True):
    """A Layer-2 file with labels and a latents file of the same stays, in another order, whose
    first dimension decides the binary label and whose second is the continuous one."""
    rng = np.random.default_rng(0)
    data = generate_synthetic(N, T, seed=0)
    mu = rng.standard_normal((N, 3)).astype(np.float32)
    data.factors = None
    if labels:
        data.labels = {
            "sepsis": (mu[:, 0] > 0.7).astype(np.int8),
            "age": (60 + 10 * mu[:, 1]).astype(np.float32),
            "sepsis_onset_hour": np.where(mu[:, 0] > 0.7, 5 + mu[:, 2], np.nan).astype(np.float32),
            "constant": np.zeros(N, dtype=np.int8),
        }
    layer2 = tmp_path / "layer2.h5"
    write_layer2(layer2, data)
    order = rng.permutation(N)
    latents = tmp_path / "run" / "vae_latents.h5"
    write_latents(latents, mu[order], np.zeros_like(mu), np.asarray(data.patient_ids)[order])
    return latents, layer2


def run_probe(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run(
        [sys.executable, "-m", "vaelab.probe", *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300, env=env
    )


def test_the_cli_prints_and_writes_the_table_and_refuses_a_missing_file(tmp_path):
    latents, layer2 = write_inputs(tmp_path)
    proc = run_probe(latents, "--labels", layer2, "--resamples", "50", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "sepsis" in proc.stdout and "boosted trees" in proc.stdout and "skipped constant:" in proc.stdout
    table = pd.read_csv(latents.parent / TABLE_FILE)
    assert (latents.parent / PLOT_FILE).read_bytes()[:4] == b"\x89PNG"
    assert set(table.label) == {"sepsis", "age", "sepsis_onset_hour"}
    assert len(table) == len(FEATURE_SETS) * len(PROBES) * (2 + 1 + 1)
    # The latents are in another order than the Layer-2 file: matched by id, the label is found.
    by = table.set_index(["label", "features", "probe", "metric"])
    assert by.loc[("sepsis", "embedding", "linear", "auroc"), "value"] > 0.95
    assert by.loc[("age", "embedding", "linear", "r2"), "value"] > 0.99
    assert by.loc[("sepsis_onset_hour", "embedding", "linear", "r2"), "n_test"] < N * 0.3  # septic stays only
    assert (table.ci_low <= table.value + 1e-9).all() and (table.value <= table.ci_high + 1e-9).all()

    proc = run_probe(tmp_path / "missing.h5", "--labels", layer2, cwd=tmp_path)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("vaelab: error: ") and "missing.h5: file not found" in lines[0]


def test_out_directory(tmp_path, capsys):
    latents, layer2 = write_inputs(tmp_path)
    assert main([str(latents), "--labels", str(layer2), "--out", str(tmp_path / "elsewhere"), "--resamples", "10", "--no-plot"]) == 0
    assert (tmp_path / "elsewhere" / TABLE_FILE).is_file() and not (tmp_path / "elsewhere" / PLOT_FILE).exists()
    assert not (latents.parent / TABLE_FILE).exists()
    assert str(tmp_path / "elsewhere" / TABLE_FILE) in capsys.readouterr().out


def drop_labels(latents, layer2):
    with h5py.File(layer2, "a") as f:
        del f["labels"]


def fewer_latents(latents, layer2):
    with h5py.File(latents, "a") as f:
        mu, ids = f["mu"][:-1], f["patient_ids"][:-1]
        del f["mu"], f["patient_ids"]
        f["mu"], f["patient_ids"] = mu, ids


def foreign_id(latents, layer2):
    with h5py.File(latents, "a") as f:
        ids = [bytes(p) for p in f["patient_ids"][:]]
        ids[5] = b"stranger"
        del f["patient_ids"]
        f["patient_ids"] = np.array(ids, dtype="S")


def no_mu(latents, layer2):
    with h5py.File(latents, "a") as f:
        del f["mu"]


def nan_mu(latents, layer2):
    with h5py.File(latents, "a") as f:
        f["mu"][3, 1] = np.nan


def text_latents(latents, layer2):
    latents.write_text("mu,patient_ids\n")


@pytest.mark.parametrize(
    "spoil, fragments",
    [
        (drop_labels, ["layer2.h5", "no 'labels' group"]),
        (fewer_latents, ["vae_latents.h5", f"'mu' has {N - 1} patients", f"layer2.h5 has {N}", "'patient_index'"]),
        (foreign_id, ["vae_latents.h5", "'stranger'", "not in", "layer2.h5"]),
        (no_mu, ["vae_latents.h5", "dataset 'mu' is missing"]),
        (nan_mu, ["vae_latents.h5", "dataset 'mu' has NaN"]),
        (text_latents, ["vae_latents.h5", "not an HDF5 file"]),
    ],
)
def test_bad_inputs_are_one_line_naming_the_file(tmp_path, capsys, spoil, fragments):
    latents, layer2 = write_inputs(tmp_path)
    spoil(latents, layer2)
    assert main([str(latents), "--labels", str(layer2)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("vaelab: error: "), captured.err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert not (latents.parent / TABLE_FILE).exists()


def test_a_layer2_file_without_labels_is_refused_before_any_fit(tmp_path, capsys):
    latents, layer2 = write_inputs(tmp_path, labels=False)
    assert main([str(latents), "--labels", str(layer2)]) == 2
    assert "no 'labels' group" in capsys.readouterr().err
