import json
import math

import numpy as np
import pytest
import torch

from vaelab.data.cohort import Cohort
from vaelab.data.prepare import prepare_data
from vaelab.data.synthetic import generate_synthetic
from vaelab.evaluation.evaluate import EvalConfig, evaluate_run
from vaelab.evaluation.metrics import (
    BANDS,
    active_units,
    band_mse,
    band_r2,
    band_sums,
    branch_mse,
    free_bits_held,
    free_bits_summary,
    kl_per_dim,
    latent_spread,
    latent_spread_per_dim,
    latent_summary,
    masked_mse,
    masked_mse_per_vital,
    mutual_information,
    total_kl,
)
from vaelab.losses import LossConfig, VAELoss
from vaelab.models.base import VAEOutput
from vaelab.models.registry import build_model

# --- KL ---------------------------------------------------------------------------------------


def test_kl_is_zero_for_the_prior():
    mu, logvar = np.zeros((5, 3)), np.zeros((5, 3))
    np.testing.assert_allclose(kl_per_dim(mu, logvar), 0.0, atol=1e-12)
    assert total_kl(mu, logvar) == pytest.approx(0.0, abs=1e-12)


def test_kl_matches_the_closed_form_by_hand():
    # dim 0: mu = +-1, var 1 -> 0.5 for both patients.
    # dim 1: (mu 0, var 4) -> -0.5 (1 + log 4 - 4) = 1.5 - log 2 ; (mu 2, var 1) -> 2.
    mu = np.array([[1.0, 0.0], [-1.0, 2.0]])
    logvar = np.array([[0.0, math.log(4.0)], [0.0, 0.0]])
    expected = np.array([0.5, (1.5 - math.log(2.0) + 2.0) / 2])
    np.testing.assert_allclose(kl_per_dim(mu, logvar), expected, rtol=1e-12)
    assert total_kl(mu, logvar) == pytest.approx(expected.sum(), rel=1e-12)
    assert isinstance(total_kl(mu, logvar), float)


def test_kl_is_not_clamped_by_free_bits():
    # A tiny KL stays tiny: no free-bits floor is applied.
    kl = kl_per_dim(np.full((4, 1), 0.01), np.zeros((4, 1)))
    np.testing.assert_allclose(kl, [0.5 * 0.01**2])


def test_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="same shape"):
        kl_per_dim(np.zeros((3, 2)), np.zeros((3, 3)))


# --- spread and active units -----------------------------------------------------------------


def test_latent_spread_of_a_known_array():
    mu = np.array([[0.0, 1.0], [2.0, 1.0], [4.0, 1.0]])
    np.testing.assert_allclose(latent_spread_per_dim(mu), [math.sqrt(8 / 3), 0.0])
    assert latent_spread(mu) == pytest.approx(math.sqrt(8 / 3) / 2)


def test_active_units_counts_dims_with_variance_above_threshold():
    # Columns +-a have variance a**2 (ddof=0): variances 0, 0.005, 0.02, 1.0.
    amplitudes = np.sqrt([0.0, 0.005, 0.02, 1.0])
    mu = np.stack([amplitudes, -amplitudes] * 3)
    np.testing.assert_allclose(np.var(mu, axis=0), [0.0, 0.005, 0.02, 1.0])
    assert active_units(mu) == 2
    assert active_units(mu, threshold=0.5) == 1
    assert active_units(mu, threshold=0.001) == 3
    assert isinstance(active_units(mu), int)


# --- mutual information ----------------------------------------------------------------------


def test_mi_is_zero_for_a_collapsed_posterior():
    mi = mutual_information(np.zeros((600, 8)), np.zeros((600, 8)), batch_size=256)
    assert abs(mi) < 1e-9


def test_mi_is_close_to_log_batch_for_separated_posteriors():
    rng = np.random.default_rng(1)
    mu = 5.0 * rng.standard_normal((512, 8))
    logvar = np.full_like(mu, -8.0)
    mi = mutual_information(mu, logvar, batch_size=256)
    assert 0.8 * math.log(256) < mi <= math.log(256) + 1e-9


def test_mi_is_bounded_by_log_of_the_patients_when_fewer_than_a_batch():
    rng = np.random.default_rng(2)
    mu = 5.0 * rng.standard_normal((40, 4))
    mi = mutual_information(mu, np.full_like(mu, -8.0), batch_size=256)
    assert 0.8 * math.log(40) < mi <= math.log(40) + 1e-9


def test_mi_is_between_the_extremes_for_partly_informative_codes():
    rng = np.random.default_rng(3)
    mu = 0.5 * rng.standard_normal((512, 2))
    mi = mutual_information(mu, np.zeros_like(mu), batch_size=256)
    assert 0.0 < mi < 1.0


def test_mi_is_seed_deterministic():
    rng = np.random.default_rng(4)
    mu, logvar = rng.standard_normal((300, 4)), rng.standard_normal((300, 4)) - 1.0
    assert mutual_information(mu, logvar, seed=7) == mutual_information(mu, logvar, seed=7)
    assert mutual_information(mu, logvar, seed=7) != mutual_information(mu, logvar, seed=8)


def test_mi_drops_the_last_partial_batch():
    # Patients 256..299 (after the seeded shuffle) never enter: with a batch of 256 out of 300
    # patients the estimate is bounded by log(256), not log(300).
    rng = np.random.default_rng(5)
    mu = 10.0 * rng.standard_normal((300, 8))
    mi = mutual_information(mu, np.full_like(mu, -10.0), batch_size=256)
    assert mi <= math.log(256) + 1e-9
    assert mi == pytest.approx(math.log(256), abs=1e-3)


# --- reconstruction --------------------------------------------------------------------------


def _recon_case():
    target = np.array([[[1.0, np.nan], [3.0, 4.0]], [[np.nan, np.nan], [0.0, 2.0]]])  # (2, 2, 2)
    mask = np.array([[[1, 0], [1, 1]], [[0, 0], [1, 1]]], dtype=float)
    recon = np.array([[[2.0, 100.0], [3.0, 6.0]], [[np.nan, 50.0], [1.0, 2.0]]])
    return recon, target, mask


def test_masked_mse_ignores_unobserved_entries_even_if_nan():
    recon, target, mask = _recon_case()
    # observed errors: vital 0 -> 1, 0, 1 ; vital 1 -> 4, 0
    assert masked_mse(recon, target, mask) == pytest.approx((1 + 0 + 1 + 4 + 0) / 5)


def test_masked_mse_per_vital_and_nan_for_unobserved_vital():
    recon, target, mask = _recon_case()
    np.testing.assert_allclose(masked_mse_per_vital(recon, target, mask), [2 / 3, 4 / 2])
    mask[..., 1] = 0
    per_vital = masked_mse_per_vital(recon, target, mask)
    assert per_vital[0] == pytest.approx(2 / 3)
    assert np.isnan(per_vital[1])


def test_masked_mse_raises_when_nothing_is_observed():
    recon, target, mask = _recon_case()
    with pytest.raises(ValueError, match="no observed entry"):
        masked_mse(recon, target, np.zeros_like(mask))


def test_branch_mse_is_masked_mse_of_each_branch():
    recon, target, mask = _recon_case()
    perfect = np.where(mask > 0, target, -1.0)
    result = branch_mse([recon, perfect], target, mask)
    assert result == [pytest.approx(6 / 5), 0.0]
    assert all(isinstance(v, float) for v in result)


# --- free bits ---------------------------------------------------------------------------------


def _posterior_with_kl(kl_per_dimension, n: int = 50, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Posteriors (unit variance) whose KL per dimension, averaged over patients, is ``kl_per_dimension``;
    each patient's KL scatters around it."""
    rng = np.random.default_rng(seed)
    signs = rng.choice([-1.0, 1.0], size=(n, len(kl_per_dimension)))
    scale = rng.uniform(0.5, 1.5, size=(n, len(kl_per_dimension)))
    scale /= scale.mean(axis=0)  # mean of mu**2 / 2 is then exactly the target
    mu = signs * np.sqrt(2.0 * np.asarray(kl_per_dimension) * scale)
    return mu, np.zeros_like(mu)


def test_free_bits_above_every_dimensions_kl_hold_all_of_them_and_beta_is_inactive():
    mu, logvar = _posterior_with_kl([1.86, 0.4, 1.2])  # the case: under the default 2 nats
    np.testing.assert_allclose(kl_per_dim(mu, logvar), [1.86, 0.4, 1.2])
    assert free_bits_summary(mu, logvar, free_bits=2.0) == {"free_bits_held_fraction": 1.0, "beta_inactive": True}
    assert free_bits_summary(mu, logvar, free_bits=0.0) == {"free_bits_held_fraction": 0.0, "beta_inactive": False}
    held = free_bits_held(mu, logvar, free_bits=1.5)
    assert held.tolist() == [False, True, True]
    assert free_bits_summary(mu, logvar, free_bits=1.5) == {"free_bits_held_fraction": pytest.approx(2 / 3), "beta_inactive": False}
    json.dumps(free_bits_summary(mu, logvar, free_bits=1.5))


def test_free_bits_zero_hold_nothing_even_for_a_collapsed_dimension():
    mu, logvar = np.zeros((8, 2)), np.zeros((8, 2))  # KL exactly 0: beta's gradient still reaches it
    assert free_bits_summary(mu, logvar, free_bits=0.0) == {"free_bits_held_fraction": 0.0, "beta_inactive": False}
    assert free_bits_summary(mu, logvar, free_bits=0.1)["beta_inactive"] is True


def test_sample_mode_holds_a_dimension_only_when_every_patient_is_under_the_floor():
    mu, logvar = _posterior_with_kl([1.0, 1.0])  # mean KL 1 nat; single patients above 1.2 nats
    assert free_bits_held(mu, logvar, 1.2, "batch").tolist() == [True, True]
    assert free_bits_held(mu, logvar, 1.2, "sample").tolist() == [False, False]
    assert free_bits_held(mu, logvar, 10.0, "sample").tolist() == [True, True]


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_held_dimensions_are_those_the_training_loss_gives_no_kl_gradient(mode):
    """The definition is the loss's: beta * the free-bits term moves exactly the dimensions not held."""
    rng = np.random.default_rng(1)
    mu = rng.normal(0.0, [0.3, 1.0, 1.6, 2.5], size=(40, 4))
    logvar = rng.normal(-0.5, 0.3, size=(40, 4))
    free_bits = 1.0
    mu_t, logvar_t = torch.tensor(mu, requires_grad=True), torch.tensor(logvar, requires_grad=True)
    x = torch.zeros(40, 6, 2, dtype=torch.float64)
    loss = VAELoss(config=LossConfig(beta=1.0, free_bits=free_bits, free_bits_mode=mode, branch_weight=0.0))
    loss.objective(VAEOutput(x, mu_t, logvar_t, mu_t, []), x).kl_clamped.backward()
    moved = (mu_t.grad != 0).any(dim=0) | (logvar_t.grad != 0).any(dim=0)
    held = free_bits_held(mu, logvar, free_bits, mode)
    assert 0 < held.sum() < 4  # a case where the answer is not the same for every dimension
    assert held.tolist() == (~moved).tolist()


def test_evaluate_run_reports_the_free_bits_floor_of_the_trained_loss():
    prepared = prepare_data(generate_synthetic(n_patients=24, seq_len=48, seed=3), seed=0)
    cohort = Cohort.from_prepared(prepared)
    torch.manual_seed(0)
    model = build_model("multiscale", cohort.n_vitals, cohort.seq_len, latent_dim=4, base_channels=8)
    config = EvalConfig(plots=False)
    without, _, _ = evaluate_run(model, cohort, config)
    assert "beta_inactive" not in without and "free_bits_held_fraction" not in without
    floor, _, _ = evaluate_run(model, cohort, config, loss=LossConfig(free_bits=1e6))
    assert floor["free_bits_held_fraction"] == 1.0 and floor["beta_inactive"] is True
    none, _, _ = evaluate_run(model, cohort, config, loss=LossConfig(free_bits=0.0))
    assert none["free_bits_held_fraction"] == 0.0 and none["beta_inactive"] is False
    json.dumps(floor)


# --- summary ---------------------------------------------------------------------------------


def test_latent_summary_has_exact_keys_and_is_json_serialisable():
    rng = np.random.default_rng(6)
    mu = np.concatenate([rng.standard_normal((100, 2)), np.zeros((100, 2))], axis=1)
    logvar = np.concatenate([np.full((100, 2), -2.0), np.zeros((100, 2))], axis=1)
    summary = latent_summary(mu, logvar, mi_batch_size=64)
    assert set(summary) == {
        "kl",
        "kl_per_latent_dim",
        "kl_per_dim",
        "active_units",
        "latent_dim",
        "latent_spread",
        "latent_spread_per_dim",
        "mi",
        "mi_batch_size",
    }
    json.dumps(summary)
    assert summary["latent_dim"] == 4
    assert summary["active_units"] == 2
    assert summary["mi_batch_size"] == 64
    assert summary["kl"] == pytest.approx(total_kl(mu, logvar))
    assert summary["kl_per_latent_dim"] == pytest.approx(total_kl(mu, logvar) / 4)
    assert summary["kl_per_dim"][2:] == [0.0, 0.0]
    assert summary["latent_spread"] == pytest.approx(latent_spread(mu))
    assert summary["mi"] == pytest.approx(mutual_information(mu, logvar, batch_size=64))
    # Fewer patients than the batch: the batch actually used is reported.
    assert latent_summary(mu[:10], logvar[:10])["mi_batch_size"] == 10


def _wave(period: float, n: int = 3, seq_len: int = 168, vitals: int = 2) -> np.ndarray:
    hours = np.arange(seq_len)
    return np.cos(2 * np.pi * hours / period)[None, :, None] * np.ones((n, 1, vitals))


@pytest.mark.parametrize("seq_len", [24, 25, 168, 745])
def test_band_mse_splits_the_masked_mse_exactly(seq_len):
    rng = np.random.default_rng(seq_len)
    target = rng.standard_normal((4, seq_len, 3))
    recon = rng.standard_normal((4, seq_len, 3))
    mask = rng.random((4, seq_len, 3)) < 0.6
    target[~mask] = np.nan
    bands = band_mse(recon, target, mask)
    assert list(bands) == list(BANDS)
    assert sum(bands.values()) == pytest.approx(masked_mse(recon, target, mask), rel=1e-9)
    assert all(v >= 0 for v in bands.values())


@pytest.mark.parametrize("period, band", [(3.0, "lt6h"), (24.0, "6to30h"), (84.0, "gt30h")])
def test_band_mse_puts_an_error_in_its_time_scale(period, band):
    target = np.zeros((3, 168, 2))
    recon = _wave(period)
    mask = np.ones_like(target)
    bands = band_mse(recon, target, mask)
    assert bands[band] == pytest.approx(sum(bands.values()), rel=1e-9)
    assert bands[band] == pytest.approx(0.5, rel=1e-6)


def test_band_mse_counts_a_constant_offset_as_slow():
    target = np.zeros((2, 48, 1))
    assert band_mse(target + 1.0, target, np.ones_like(target)) == {"lt6h": 0.0, "6to30h": 0.0, "gt30h": pytest.approx(1.0)}


def test_band_r2_says_which_time_scale_is_reconstructed():
    target = _wave(24.0) + 0.5 * _wave(3.0) + 1.0
    without_rhythm = 0.5 * _wave(3.0) + 1.0  # got events and level, missed the daily rhythm
    r2 = band_r2(without_rhythm, target, np.ones_like(target))
    assert r2["lt6h"] == pytest.approx(1.0) and r2["gt30h"] == pytest.approx(1.0)
    assert r2["6to30h"] == pytest.approx(0.0, abs=1e-9)
    assert band_r2(target, target, np.ones_like(target)) == {name: pytest.approx(1.0) for name in BANDS}


def test_band_sums_of_patient_batches_add_up_to_the_whole():
    rng = np.random.default_rng(5)
    target = rng.standard_normal((9, 72, 3))
    recon = target + 0.3 * rng.standard_normal(target.shape)
    mask = (rng.random(target.shape) < 0.7).astype(np.float32)
    whole = band_sums(recon, target, mask)
    parts = band_sums(recon[:4], target[:4], mask[:4]) + band_sums(recon[4:], target[4:], mask[4:])
    assert parts.n_observed == whole.n_observed == int(mask.sum())
    assert parts.mse() == pytest.approx(band_mse(recon, target, mask), rel=1e-12)
    assert parts.r2() == pytest.approx(band_r2(recon, target, mask), rel=1e-12)
    assert sum(parts.mse().values()) == pytest.approx(masked_mse(recon, target, mask), rel=1e-9)
