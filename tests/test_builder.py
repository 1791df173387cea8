import h5py
import numpy as np
import pytest

from vaelab import VAEBuilder, VaelabError
from vaelab.data.layer2 import write_layer2
from vaelab.data.latents import read_latents
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
