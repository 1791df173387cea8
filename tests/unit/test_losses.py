import math

import numpy as np
import pytest
import torch

from vaelab import MultiScaleVAELoss, VaelabError, VAELoss
from vaelab.losses import free_bits_kl, gaussian_kl, masked_mse, spectral_log_distance
from vaelab.models import VAEOutput
from vaelab.signal import octave_bands


def output(recon, mu, logvar, branches=(), band_power=None, quantiles=None):
    """A model's VAEOutput decoding ``mu`` (what the objective reads)."""
    return VAEOutput(recon, mu, logvar, mu, list(branches), band_power, quantiles)


def test_masked_mse_ignores_unobserved_entries_even_nan():
    target = torch.tensor([[[1.0, float("nan")], [3.0, 100.0]]])
    mask = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    pred = torch.tensor([[[2.0, 0.0], [3.0, 0.0]]])
    assert masked_mse(pred, target, mask).item() == pytest.approx(0.5)


def test_gaussian_kl_closed_form():
    mu, logvar = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, math.log(2.0)]])
    expected = [0.5, 0.5 * (2.0 - 1 - math.log(2.0))]
    assert gaussian_kl(mu, logvar)[0].tolist() == pytest.approx(expected)


def test_batch_free_bits_averages_over_the_batch_before_clamping():
    # one patient uses dim 0 a lot (KL 4), the other not at all: batch mean 2 == threshold -> no penalty
    kl = torch.tensor([[4.0], [0.0]])
    assert free_bits_kl(kl, 2.0, "batch").item() == 0.0
    assert free_bits_kl(kl, 2.0, "sample").item() == pytest.approx(1.0)


def test_true_kl_is_reported_when_the_clamped_term_is_zero():
    loss = VAELoss(beta=1.0, free_bits=10.0)
    mu, logvar = torch.full((4, 3), 1.0), torch.zeros(4, 3)
    x = torch.zeros(4, 5, 2)
    t = loss.objective(output(x, mu, logvar), x)
    assert t.kl_clamped.item() == 0.0
    assert t.kl.item() == pytest.approx(1.5)
    assert t.kl_per_dim.tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_collapsed_posterior_reports_zero_true_kl():
    t = VAELoss(free_bits=0.0).objective(output(torch.zeros(2, 3, 1), torch.zeros(2, 4), torch.zeros(2, 4)), torch.zeros(2, 3, 1))
    assert t.kl.item() == 0.0


def test_branch_weight_zero_uses_the_merged_output_only_and_one_is_the_plan():
    target, merged = torch.zeros(2, 6, 3), torch.ones(2, 6, 3)
    branches = [torch.full((2, 6, 3), 2.0)] * 4
    mu = logvar = torch.zeros(2, 4)
    assert VAELoss(branch_weight=0.0).objective(output(merged, mu, logvar, branches), target).recon.item() == 1.0
    plan = (1.0 + 4 * 4.0) / 5
    assert VAELoss(branch_weight=1.0).objective(output(merged, mu, logvar, branches), target).recon.item() == pytest.approx(plan)


def test_get_beta_has_no_side_effect_and_beta_is_explicit():
    loss = MultiScaleVAELoss(beta=0.5, free_bits=0.0, warmup_epochs=10, cycle_epochs=20)
    x, y = torch.zeros(2, 4, 1), torch.zeros(2, 4, 1)
    mu, logvar = torch.ones(2, 3), torch.zeros(2, 3)
    before = loss(x, y, mu, logvar)[0].item()
    assert loss.get_beta(0) == 0.0
    assert loss(x, y, mu, logvar)[0].item() == before  # default beta = target, whatever get_beta was asked
    assert loss(x, y, mu, logvar, beta=0.0)[0].item() == 0.0
    assert before == pytest.approx(0.5 * 0.5)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"free_bits": -1.0}, "config loss.free_bits: must be >= 0"),
        ({"free_bits_mode": "dim"}, "config loss.free_bits_mode: must be one of batch, sample, got 'dim'"),
        ({"spectral_weight": -0.5}, "config loss.spectral_weight: must be >= 0"),
    ],
)
def test_bad_loss_settings(kwargs, message):
    with pytest.raises(VaelabError, match=message):
        VAELoss(**kwargs)


def test_masked_mse_gradient_reaches_observed_entries_only():
    target = torch.tensor([[[1.0, float("nan")], [3.0, 100.0]]])
    mask = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    pred = torch.zeros(1, 2, 2, requires_grad=True)
    masked_mse(pred, target, mask).backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[mask == 0] == 0).all() and (pred.grad[mask == 1] != 0).all()


def test_octave_bands_cover_every_frequency_but_the_mean_once():
    for seq_len in (24, 25, 168, 745):
        bands = octave_bands(seq_len)
        assert bands.shape[0] == seq_len // 2 + 1
        assert bands[0].sum() == 0 and (bands[1:].sum(1) == 1).all()


def _rhythm(amplitude: float, period: float, n: int = 4, seq_len: int = 168) -> torch.Tensor:
    hours = torch.arange(seq_len, dtype=torch.float32)
    return (amplitude * torch.cos(2 * math.pi * hours / period)).view(1, -1, 1).repeat(n, 1, 2)


def test_spectral_distance_charges_a_missing_rhythm_but_not_its_timing():
    target = _rhythm(1.0, 24.0)
    observed = torch.ones_like(target)
    flat = torch.zeros_like(target)
    shifted = torch.roll(target, 7, dims=1)  # the right rhythm at the wrong clock time
    assert spectral_log_distance(target, target, observed).item() == pytest.approx(0.0, abs=1e-9)
    assert spectral_log_distance(shifted, target, observed).item() < 1e-3
    assert spectral_log_distance(flat, target, observed).item() > 1.0
    assert masked_mse(shifted, target).item() > 0.5  # MSE would rather have the flat line


def test_spectral_weight_adds_the_term_to_the_objective_with_gradient():
    target = _rhythm(1.0, 24.0)
    mask = (torch.rand_like(target) < 0.8).float()
    pred = torch.zeros_like(target, requires_grad=True)
    mu, logvar = torch.zeros(4, 3), torch.zeros(4, 3)
    plain = VAELoss(beta=0.0, free_bits=0.0).objective(output(pred, mu, logvar), target, mask)
    spectral = VAELoss(beta=0.0, free_bits=0.0, spectral_weight=2.0).objective(output(pred, mu, logvar), target, mask)
    assert plain.spectral.item() == 0.0
    assert spectral.total.item() == pytest.approx(plain.total.item() + 2.0 * spectral.spectral.item(), rel=1e-6)
    spectral.total.backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_observed_quantiles_match_numpy_over_the_observed_hours_only():
    from vaelab.signal import QUANTILE_LEVELS, observed_quantiles

    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 30, 3)).astype(np.float32)
    mask = (rng.random((4, 30, 3)) < 0.6).astype(np.float32)
    mask[1, :, 2] = 0.0  # a vital never observed for one patient
    mask[2, :, 0] = 0.0
    mask[2, 7, 0] = 1.0  # and one observed once
    got, present = observed_quantiles(torch.as_tensor(x * mask), torch.as_tensor(mask))
    assert got.shape == (4, 3, len(QUANTILE_LEVELS)) and present.shape == (4, 3)
    for b in range(4):
        for v in range(3):
            seen = x[b, mask[b, :, v] > 0, v]
            if len(seen) == 0:
                assert present[b, v] == 0 and torch.all(got[b, v] == 0)
            else:
                np.testing.assert_allclose(got[b, v].numpy(), np.quantile(seen, QUANTILE_LEVELS), rtol=1e-5, atol=1e-6)
    assert torch.all(got[2, 0] == float(x[2, 7, 0]))


def test_the_quantile_head_error_counts_only_observed_vitals_and_is_weighted():
    from vaelab.signal import QUANTILE_LEVELS, observed_quantiles

    torch.manual_seed(0)
    x = torch.randn(3, 24, 2)
    mask = torch.ones_like(x)
    mask[0, :, 1] = 0.0
    mu, logvar = torch.zeros(3, 4), torch.zeros(3, 4)
    wanted, _ = observed_quantiles(x * mask, mask)
    perfect = VAELoss(quantile_weight=2.0).objective(output(x, mu, logvar, quantiles=wanted), x, mask)
    assert perfect.quantile.item() == pytest.approx(0.0, abs=1e-7)
    off = wanted.clone()
    off[0, 1] += 100.0  # an error on the unobserved vital costs nothing
    assert VAELoss(quantile_weight=2.0).objective(output(x, mu, logvar, quantiles=off), x, mask).quantile.item() == pytest.approx(
        0.0, abs=1e-7
    )
    off[1, 0] += 1.0  # one observed vital off by 1 at every level: 1 / 5 observed vitals
    t = VAELoss(quantile_weight=2.0).objective(output(x, mu, logvar, quantiles=off), x, mask)
    assert t.quantile.item() == pytest.approx(1.0 / 5)
    assert t.total.item() == pytest.approx(perfect.total.item() + 2.0 / 5, rel=1e-5)
    assert len(QUANTILE_LEVELS) == off.shape[-1]
