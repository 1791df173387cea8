"""The real CLI end to end: `python -m vaelab ...` in a subprocess, tiny data, a few epochs."""

import json

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY

from vaelab.data.prepare import Normalizer
from vaelab.data.synthetic import generate_synthetic
from vaelab.training import encode_posterior
from vaelab.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow

RUN_FILES = {".hydra", "metrics.json", "history.csv", "vae_latents.h5", "checkpoint.pt", "plots", "vaelab.log"}
PLOTS = {"training_curves.png", "kl_per_dim.png", "latent_spread.png", "reconstructions.png"}


@pytest.mark.parametrize("model", ["multiscale", "lstm"])
def test_a_run_writes_every_output_with_sane_values(run_cli, tmp_path, model):
    extra = ["model.hidden_dim=8", "model.n_layers=1"] if model == "lstm" else []
    proc = run_cli(f"model={model}", *[o for o in TINY if model == "multiscale" or "base_channels" not in o], *extra)
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    assert {p.name for p in (run / "plots").iterdir()} == PLOTS
    assert not list(run.rglob("*.tmp"))

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok"
    assert metrics["latent_dim"] == 4 and len(metrics["kl_per_dim"]) == 4
    assert metrics["kl"] == pytest.approx(sum(metrics["kl_per_dim"])) and metrics["kl"] >= 0
    assert 0 <= metrics["active_units"] <= 4
    assert 0 < metrics["recon_mse"] < 10 and metrics["epochs_trained"] == 3 and metrics["train_seconds"] > 0
    assert set(metrics["factor_r2"]) == set(generate_synthetic(4, 24).factors)
    assert set(metrics["recon_mse_per_vital"]) == {"HR", "SBP", "DBP", "MAP", "RR", "SPO2", "TEMP"}

    history = pd.read_csv(run / "history.csv")
    assert len(history) == 3 and {"beta", "train_recon", "val_kl", "active_units"} <= set(history.columns)

    with h5py.File(run / "vae_latents.h5") as f:
        mu, ids = f["mu"][:], f["patient_ids"][:]
    assert mu.shape == (24, 4) and len(set(ids)) == 24

    # the checkpoint rebuilds the model and its normalization without Hydra, weights_only
    torch.load(run / "checkpoint.pt", weights_only=True)
    model_, normalizer, config = load_checkpoint(run / "checkpoint.pt")
    assert isinstance(normalizer, Normalizer) and config["model"]["name"] == model
    data = generate_synthetic(24, 48, seed=0)
    again, _ = encode_posterior(model_, normalizer.transform(data.values, data.masks), data.masks)
    np.testing.assert_allclose(again, mu, rtol=1e-4, atol=1e-5)


def test_bad_override_fails_with_one_line_and_no_traceback(run_cli):
    proc = run_cli("loss.beta=-1", *TINY)
    assert proc.returncode != 0
    assert "config loss.beta: must be >= 0, got -1.0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_misspelt_key_fails_naming_it(run_cli):
    proc = run_cli("loss.fre_bits=1", *TINY)
    assert proc.returncode != 0 and "fre_bits" in proc.stderr and "Traceback" not in proc.stderr


def test_missing_h5_file_is_named(run_cli, tmp_path):
    proc = run_cli("data=h5", f"data.path={tmp_path / 'nope.h5'}", *TINY[2:])
    assert proc.returncode != 0
    assert "nope.h5" in proc.stderr and "Traceback" not in proc.stderr
    assert len([line for line in proc.stderr.splitlines() if "error" in line]) == 1


def test_divergence_is_recorded_and_exits_non_zero(run_cli, tmp_path):
    proc = run_cli("trainer.lr=1e12", "schedule=constant", *TINY)
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert proc.returncode == 3, proc.stderr
    assert metrics["status"] == "diverged" and isinstance(metrics["diverged_epoch"], int)


@pytest.mark.parametrize(
    "override, hint",
    [
        ("trainer.epoch=3", "(did you mean trainer.epochs?)"),
        ("loss.fre_bits=1", "(did you mean loss.free_bits?)"),
        ("data.path=x.h5", "(data.path is a setting of data=h5)"),
        ("model.hidden_dim=4", "(model.hidden_dim is a setting of model=lstm)"),
    ],
)
def test_an_unknown_key_names_the_next_step(run_cli, override, hint):
    proc = run_cli(override)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("vaelab: error: config:")
    assert lines[0].endswith(hint), lines[0]


def test_an_unknown_key_with_no_near_match_gets_no_guess(run_cli):
    proc = run_cli("trainer.zzz=1")
    assert proc.returncode == 2 and proc.stderr.strip().endswith("Key 'zzz' not in 'TrainConfig'")
