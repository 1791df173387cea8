"""Training on a GPU (trainer.device=cuda): the same code path as the CPU, with the data moved per batch.

These need a CUDA device and are skipped without one (CI has none); they passed on an NVIDIA H200
(README, "On a GPU", gives the command). The CPU-only refusal is tested in
test_train.py.
"""

import json

import numpy as np
import pytest
import torch
from conftest import TINY

from vaelab.data.prepare import prepare_data
from vaelab.data.synthetic import generate_synthetic
from vaelab.losses import MultiScaleVAELoss
from vaelab.models import MultiScaleConv1DVAE
from vaelab.training import TrainConfig, encode_posterior, reconstruct, train
from vaelab.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _tiny_model():
    torch.manual_seed(0)
    return MultiScaleConv1DVAE(
        input_dim=7, seq_len=48, latent_dim=8, base_channels=8, latent_groups=True, spectral_head=True, posterior_bn=0.5
    )


def test_every_model_option_trains_on_cuda_and_returns_cpu_arrays(tmp_path):
    prepared = prepare_data(generate_synthetic(40, 48, seed=1), seed=0)
    tr, va = prepared.train_idx, prepared.val_idx
    model = _tiny_model()
    config = TrainConfig(epochs=3, batch_size=8, patience=10, device="cuda")
    state = tmp_path / "train_state.pt"
    result = train(
        model,
        MultiScaleVAELoss(branch_weight=0.0, band_power_weight=0.3),
        prepared.x[tr],
        prepared.masks[tr],
        prepared.x[va],
        prepared.masks[va],
        config,
        state_path=state,
        fingerprint="cuda",
    )
    assert next(model.parameters()).is_cuda and result.epochs_trained == 3
    assert all(np.isfinite(row["train_loss"]) and np.isfinite(row["val_loss"]) for row in result.history)
    mu, logvar = encode_posterior(model, prepared.x, prepared.masks)
    recon, branches = reconstruct(model, prepared.x, prepared.masks)
    assert isinstance(mu, np.ndarray) and mu.shape == logvar.shape == (40, 8) and np.isfinite(mu).all()
    assert recon.shape == prepared.x.shape and len(branches) == 4

    # A state written on the GPU resumes there (loaded to the CPU first, then moved).
    again = _tiny_model()
    resumed = train(
        again,
        MultiScaleVAELoss(branch_weight=0.0, band_power_weight=0.3),
        prepared.x[tr],
        prepared.masks[tr],
        prepared.x[va],
        prepared.masks[va],
        TrainConfig(epochs=4, batch_size=8, patience=10, device="cuda"),
        state_path=state,
        fingerprint="cuda",
    )
    assert resumed.epochs_trained == 4 and resumed.history[:3] == result.history


def test_a_cuda_run_from_the_cli_writes_a_checkpoint_the_cpu_can_load(run_cli, tmp_path):
    proc = run_cli(*TINY, "trainer.device=cuda", "model.posterior_bn=0.5")
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and np.isfinite(metrics["recon_mse"]) and set(metrics["factor_r2"])
    model, normalizer, _ = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert next(model.parameters()).device.type == "cpu"
    data = generate_synthetic(24, 48, seed=0)
    mu, _ = encode_posterior(model, normalizer.transform(data.values, data.masks), data.masks)
    assert mu.shape == (24, 4) and np.isfinite(mu).all()


def test_a_trial_sharing_the_gpu_is_capped_at_its_share_of_memory(tmp_path):
    """What a joblib sweep with trainer.device=cuda gives each of its n_jobs trials: 1/n_jobs of the memory."""
    prepared = prepare_data(generate_synthetic(40, 48, seed=1), seed=0)
    tr, va = prepared.train_idx, prepared.val_idx
    config = TrainConfig(epochs=1, batch_size=8, device="cuda", cuda_memory_fraction=0.25)
    train(_tiny_model(), MultiScaleVAELoss(), prepared.x[tr], prepared.masks[tr], prepared.x[va], prepared.masks[va], config)
    if hasattr(torch.cuda, "get_per_process_memory_fraction"):
        assert torch.cuda.get_per_process_memory_fraction(0) == pytest.approx(0.25)
