import numpy as np
import pytest

from vaelab.data.prepare import prepare_data
from vaelab.data.synthetic import generate_synthetic
from vaelab.errors import VaelabError
from vaelab.losses import MultiScaleVAELoss
from vaelab.models import build_model
from vaelab.training import TrainConfig, TrainingDiverged, encode_posterior, reconstruct, seed_everything, train


@pytest.fixture(scope="module")
def prepared():
    return prepare_data(generate_synthetic(n_patients=40, seq_len=48, seed=3), seed=0)


SMALL = {"multiscale_conv1d": {"base_channels": 8}, "lstm": {"hidden_dim": 8, "n_layers": 1}}


def _fit(prepared, model_type="multiscale_conv1d", epochs=3, seed=0, **loss_kwargs):
    data = prepared.data
    seed_everything(seed)
    model = build_model(model_type, data.n_vitals, data.seq_len, latent_dim=4, **SMALL[model_type])
    loss = MultiScaleVAELoss(**({"beta": 0.5, "free_bits": 0.5, "warmup_epochs": 1, "cycle_epochs": 2} | loss_kwargs))
    tr, va = prepared.train_idx, prepared.val_idx
    config = TrainConfig(epochs=epochs, batch_size=8, lr=1e-3, patience=10)
    return model, train(model, loss, prepared.x[tr], prepared.masks[tr], prepared.x[va], prepared.masks[va], config, seed=seed)


HISTORY_COLUMNS = {
    "epoch",
    "beta",
    "train_loss",
    "train_recon",
    "train_kl",
    "train_kl_clamped",
    "val_loss",
    "val_recon",
    "val_kl",
    "val_kl_clamped",
    "active_units",
    "seconds",
}


@pytest.mark.parametrize("model_type", ["multiscale_conv1d", "lstm"])
def test_one_trainer_trains_both_models(prepared, model_type):
    model, result = _fit(prepared, model_type)
    assert result.epochs_trained == 3 and len(result.history) == 3
    assert set(result.history[0]) == HISTORY_COLUMNS
    # the loss's schedule decides beta for every model alike (cyclical: warm-up 1, cycle 2)
    assert [row["beta"] for row in result.history] == [0.0, 0.5, 0.0]
    for row in result.history:
        assert all(np.isfinite(v) for v in row.values())
        assert row["train_kl"] >= 0 and row["val_kl"] >= 0


def test_training_is_deterministic_for_a_seed(prepared):
    _, a = _fit(prepared, seed=5)
    _, b = _fit(prepared, seed=5)
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)


def test_best_weights_are_restored(prepared):
    model, result = _fit(prepared, epochs=4)
    best = min(result.history, key=lambda r: r["val_loss"])
    assert result.best_epoch == best["epoch"]
    from vaelab.training import evaluate

    va = prepared.val_idx
    loss = MultiScaleVAELoss(beta=0.5, free_bits=0.5, warmup_epochs=1, cycle_epochs=2)
    assert evaluate(model, loss, prepared.x[va], prepared.masks[va])["loss"] == pytest.approx(best["val_loss"], rel=1e-5)


def test_early_stopping_stops_after_patience(prepared):
    data = prepared.data
    model = build_model("multiscale_conv1d", data.n_vitals, data.seq_len, latent_dim=4, base_channels=8)
    loss = MultiScaleVAELoss(warmup_epochs=1, cycle_epochs=2)
    tr, va = prepared.train_idx, prepared.val_idx
    result = train(
        model,
        loss,
        prepared.x[tr],
        prepared.masks[tr],
        prepared.x[va],
        prepared.masks[va],
        TrainConfig(epochs=200, batch_size=8, lr=1e-7, patience=2),
    )
    assert result.stopped_early
    assert result.epochs_trained == result.best_epoch + 3


def test_nan_loss_is_refused_with_a_clear_error(prepared):
    data = prepared.data
    model = build_model("multiscale_conv1d", data.n_vitals, data.seq_len, latent_dim=4, base_channels=8)
    loss = MultiScaleVAELoss()
    x = prepared.x.copy()
    x[prepared.train_idx[0], 0, 0] = np.inf  # forced divergence
    tr, va = prepared.train_idx, prepared.val_idx
    with pytest.raises(TrainingDiverged, match="diverged at epoch 0"):
        train(model, loss, x[tr], prepared.masks[tr], x[va], prepared.masks[va], TrainConfig(epochs=2, batch_size=64))


def test_posterior_and_reconstruction_shapes(prepared):
    model, _ = _fit(prepared, epochs=1)
    mu, logvar = encode_posterior(model, prepared.x, prepared.masks, batch_size=7)
    assert mu.shape == logvar.shape == (prepared.data.n_patients, 4)
    recon, branches = reconstruct(model, prepared.x, prepared.masks, batch_size=7)
    assert recon.shape == prepared.x.shape and len(branches) == 4
    assert all(b.shape == prepared.x.shape for b in branches)


def test_cuda_is_refused_with_one_line_when_unavailable_and_cpu_accepted():
    import torch

    from vaelab.errors import VaelabError
    from vaelab.training.trainer import resolve_device

    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(VaelabError, match="trainer.device: 'tpu9' is not"):
        resolve_device("tpu9")
    if not torch.cuda.is_available():
        with pytest.raises(VaelabError, match="trainer.device=cuda: no CUDA device is available"):
            TrainConfig(device="cuda")
    else:  # on a GPU machine the same run trains there
        assert resolve_device("cuda").type == "cuda"


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_a_gpu_memory_share_outside_0_to_1_is_refused(fraction):
    with pytest.raises(VaelabError, match=r"^config trainer.cuda_memory_fraction: must be in \(0, 1\] or null"):
        TrainConfig(cuda_memory_fraction=fraction)
    assert TrainConfig(cuda_memory_fraction=0.125).cuda_memory_fraction == 0.125


@pytest.mark.parametrize(("cores", "expected"), [(1, 1), (2, 1), (3, 1), (4, 2), (8, 4), (64, 4)])
def test_a_run_that_sets_no_threads_takes_half_its_cores_at_most_four(monkeypatch, cores, expected):
    from vaelab.training.trainer import default_threads

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)))
    assert default_threads() == expected


def test_training_without_a_thread_setting_uses_the_default_threads(prepared):
    import torch

    from vaelab.training.trainer import default_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(7)
        data, tr, va = prepared.data, prepared.train_idx, prepared.val_idx
        model = build_model("multiscale_conv1d", data.n_vitals, data.seq_len, latent_dim=4, base_channels=8)
        train(model, MultiScaleVAELoss(), prepared.x[tr], prepared.masks[tr], prepared.x[va], prepared.masks[va], TrainConfig(epochs=1))
        assert torch.get_num_threads() == default_threads()
    finally:
        torch.set_num_threads(before)
