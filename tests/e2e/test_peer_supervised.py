"""experiments/peers/supervised.py as a real subprocess on a small Layer-2 file written here: the
encoder learns a binary and a continuous label the vitals decide, its test stays are the probe
table's, its latents and head give back the AUROC or R² it reports, and each bad input is one line
naming the file and label, exit 2."""

import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO
from sklearn.metrics import r2_score, roc_auc_score

from vaelab.data.latents import read_latents
from vaelab.data.layer2 import write_layer2
from vaelab.data.synthetic import generate_synthetic
from vaelab.evaluation.probes import TEST_FRACTION, seeded_split
from vaelab.models.multiscale import MultiScaleConfig

pytestmark = pytest.mark.slow

SCRIPT = REPO / "experiments" / "peers" / "supervised.py"
N, T = 300, 48


@pytest.fixture(scope="module")
def layer2(tmp_path_factory):
    """N synthetic stays; ``hr_high`` (mean heart rate above the median) and ``hr_mean`` (continuous,
    NaN for every tenth stay) are readable from the vitals, ``constant`` is not a label to learn."""
    data = generate_synthetic(N, T, seed=0)
    hr = np.nanmean(data.values[..., data.vitals.index("HR")], axis=1)
    data.factors = None
    data.labels = {
        "hr_high": (hr > np.median(hr)).astype(np.int8),
        "hr_mean": np.where(np.arange(N) % 10 == 0, np.nan, hr).astype(np.float32),
        "constant": np.ones(N, dtype=np.float32),
    }
    path = tmp_path_factory.mktemp("data") / "layer2.h5"
    write_layer2(path, data)
    return path, data.labels, np.asarray(data.patient_ids)


def run_script(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_encoder_learns_the_label_on_the_probe_tables_split(layer2, tmp_path, seed):
    path, labels, ids = layer2
    y = labels["hr_high"]
    out = tmp_path / "out"
    proc = run_script("--data", path, "--label", "hr_high", "--out", out, "--epochs", 6, "--patience", 6, "--seed", seed, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "epoch   1  train loss" in proc.stdout and "val AUROC" in proc.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["seeds"] == {"model": seed, "split": 0}
    assert run["test_auroc"] > 0.8, run["test_auroc"]  # chance is 0.5; a working model gets ~0.99
    assert 1 <= run["best_epoch"] <= run["epochs_trained"] <= 6 and len(run["history"]) == run["epochs_trained"]

    latents = read_latents(out / "supervised_latents.h5")
    dims = MultiScaleConfig().latent_dim  # the default VAE's encoder, latent size included
    assert latents["mu"].shape == (N, dims) and latents["logvar"].shape == (N, dims)
    assert list(latents["patient_ids"]) == list(ids)  # every stay, in the file's order
    # The probe table's split of a binary label without NaN, computed here independently: the head's
    # logit of the latents of exactly those test stays gives the AUROC the run reports.
    train, test = seeded_split(N, seed=0, test_fraction=TEST_FRACTION, stratify=y)
    assert run["stays"]["test"] == len(test) and run["stays"]["fit"] + run["stays"]["val"] == len(train)
    logits = latents["mu"].astype(np.float64) @ np.asarray(run["head"]["weight"]) + run["head"]["bias"]
    assert roc_auc_score(y[test], logits[test]) == pytest.approx(run["test_auroc"], abs=1e-4)


def test_the_encoder_learns_a_continuous_label_on_the_probe_tables_split(layer2, tmp_path):
    path, labels, _ = layer2
    y = labels["hr_mean"].astype(np.float64)
    out = tmp_path / "out"
    proc = run_script("--data", path, "--label", "hr_mean", "--out", out, "--epochs", 8, "--patience", 8, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "continuous label 'hr_mean'" in proc.stdout and "val R2" in proc.stdout and "test R2" in proc.stdout
    run = json.loads((out / "run.json").read_text())
    assert run["metric"] == "r2" and "val_r2" in run and "test_auroc" not in run
    assert run["test_r2"] > 0.5, run["test_r2"]  # the mean heart rate is in the input; chance is <= 0
    # The probe table's split of a continuous label: its finite stays, unstratified. The head's
    # z-scored prediction, back in beats per minute, gives the R² the run reports.
    rows = np.flatnonzero(np.isfinite(y))
    train, test = seeded_split(len(rows), seed=0, test_fraction=TEST_FRACTION)
    assert run["stays"]["with_label"] == len(rows) and run["stays"]["test"] == len(test)
    mu = read_latents(out / "supervised_latents.h5")["mu"].astype(np.float64)
    prediction = run["settings"]["target_mean"] + run["settings"]["target_sd"] * (
        mu @ np.asarray(run["head"]["weight"]) + run["head"]["bias"]
    )
    assert r2_score(y[rows[test]], prediction[rows[test]]) == pytest.approx(run["test_r2"], abs=1e-4)


def test_a_missing_label_is_one_line_and_exit_2(layer2, tmp_path):
    proc = run_script("--data", layer2[0], "--label", "no_such_label", "--out", tmp_path / "out", "--epochs", 1, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and f"{layer2[0]}: label 'no_such_label' is not in the file's labels/ group" in lines[0], proc.stderr
    assert not (tmp_path / "out").exists()


def load_script(monkeypatch):
    monkeypatch.syspath_prepend(str(SCRIPT.parent))  # as when run as a script: peer_data beside it
    spec = importlib.util.spec_from_file_location("peer_supervised", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("label", "data", "expected"),
    [("constant", None, "label 'constant' cannot be used"), ("hr_high", "missing.h5", "missing.h5: file not found")],
)
def test_a_constant_label_or_a_missing_file_is_one_line_and_exit_2(layer2, tmp_path, capsys, monkeypatch, label, data, expected):
    path = tmp_path / data if data else layer2[0]
    assert load_script(monkeypatch).main(["--data", str(path), "--label", label, "--out", str(tmp_path / "out"), "--epochs", "1"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0] and str(path) in lines[0], lines
    assert not (tmp_path / "out").exists()
