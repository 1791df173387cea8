import json

import h5py
import numpy as np
import pytest

from vaelab import VAEBuilder, VaelabError
from vaelab.data.latents import read_latents
from vaelab.data.layer2 import write_layer2
from vaelab.data.synthetic import generate_synthetic


@pytest.fixture
def layer2_file(tmp_path):
    path = tmp_path / "hourly_tensors.h5"
    write_layer2(path, generate_synthetic(n_patients=24, seq_len=48, seed=1))
    return path


@pytest.mark.parametrize("model_type", ["multiscale_conv1d", "lstm"])
def test_builder_writes_latents_for_every_patient(layer2_file, tmp_path, model_type):
    out = tmp_path / "out"
    builder = VAEBuilder(layer2_file, out, model_type=model_type, latent_dim=6, base_channels=8, hidden_dim=8, n_layers=1)
    latents = builder.build(epochs=2, batch_size=8, patience=5)
    assert latents["mu"].shape == latents["logvar"].shape == (24, 6)
    stored = read_latents(out / "vae_latents.h5")
    np.testing.assert_allclose(stored["mu"], latents["mu"])
    assert list(stored["patient_ids"]) == [f"S{i:05d}" for i in range(24)] == list(latents["patient_ids"])
    with h5py.File(out / "vae_latents.h5") as f:
        assert set(f) == {"mu", "logvar", "patient_ids"}
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_builder_rejects_an_unknown_model_type(tmp_path):
    with pytest.raises(VaelabError, match="model_type 'gru' is unknown"):
        VAEBuilder(tmp_path / "x.h5", tmp_path, model_type="gru")


def test_builder_names_a_missing_file(tmp_path):
    with pytest.raises(VaelabError, match="missing.h5"):
        VAEBuilder(tmp_path / "missing.h5", tmp_path / "out").build(epochs=1)


@pytest.mark.slow
def test_the_builder_and_the_cli_train_the_same_model_to_the_same_latents(tmp_path, run_cli):
    """The user's Layer-4 path (VAEBuilder) and `python -m vaelab data=h5` share defaults and pipeline."""
    import torch

    path = tmp_path / "cohort.h5"
    write_layer2(path, generate_synthetic(n_patients=60, seq_len=48, seed=2))
    proc = run_cli(
        "data=h5", f"data.path={path}", "trainer.epochs=3", "trainer.batch_size=16", "seed=0", "quiet=true", run_dir=tmp_path / "cli"
    )
    assert proc.returncode == 0, proc.stderr
    builder = VAEBuilder(path, tmp_path / "builder", seed=0)
    latents = builder.build(epochs=3, batch_size=16)

    cli = torch.load(tmp_path / "cli" / "checkpoint.pt", weights_only=True)
    built = torch.load(tmp_path / "builder" / "checkpoint.pt", weights_only=True)
    assert cli["model_args"] == built["model_args"]  # same class and options
    options = built["model_args"]["config"]
    assert options["spectral_head"] and options["observation_head"] and options["posterior_bn"] == 0.6
    assert {k: v.shape for k, v in cli["state_dict"].items()} == {k: v.shape for k, v in built["state_dict"].items()}
    cli_metrics = json.loads((tmp_path / "cli" / "metrics.json").read_text())
    assert cli_metrics["n_parameters"] == builder.metrics["n_parameters"] == sum(p.numel() for p in builder.model.parameters())
    stored = read_latents(tmp_path / "cli" / "vae_latents.h5")
    np.testing.assert_allclose(latents["mu"], stored["mu"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(latents["logvar"], stored["logvar"], rtol=1e-4, atol=1e-5)
    assert list(latents["patient_ids"]) == list(stored["patient_ids"])


def test_the_builder_logs_its_progress(layer2_file, tmp_path, caplog):
    import logging

    with caplog.at_level(logging.INFO, logger="vaelab"):
        VAEBuilder(layer2_file, tmp_path / "out", latent_dim=4, base_channels=8).build(epochs=2, batch_size=8)
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("epoch ") for m in messages) == 2
    assert any(m.startswith("VAEBuilder: training multiscale_conv1d") for m in messages)
    assert any("active units" in m for m in messages)
