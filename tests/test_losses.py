import math

import pytest
import torch

from vaelab import MultiScaleVAELoss, VAELoss, VaelabError
from vaelab.losses import free_bits_kl, gaussian_kl, masked_mse


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
    t = loss.terms(x, x, mu, logvar)
    assert t.kl_clamped.item() == 0.0
    assert t.kl.item() == pytest.approx(1.5)
    assert t.kl_per_dim.tolist() == pytest.approx([0.5, 0.5, 0.5])


def test_collapsed_posterior_reports_zero_true_kl():
    t = VAELoss(free_bits=0.0).terms(torch.zeros(2, 3, 1), torch.zeros(2, 3, 1), torch.zeros(2, 4), torch.zeros(2, 4))
    assert t.kl.item() == 0.0


def test_branch_weight_zero_uses_the_merged_output_only_and_one_is_the_plan():
    target, merged = torch.zeros(2, 6, 3), torch.ones(2, 6, 3)
    branches = [torch.full((2, 6, 3), 2.0)] * 4
    mu = logvar = torch.zeros(2, 4)
    assert VAELoss(branch_weight=0.0).terms(merged, target, mu, logvar, branch_recons=branches).recon.item() == 1.0
    plan = (1.0 + 4 * 4.0) / 5
    assert VAELoss(branch_weight=1.0).terms(merged, target, mu, logvar, branch_recons=branches).recon.item() == pytest.approx(plan)


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
    [({"free_bits": -1.0}, "free_bits must be >= 0"), ({"free_bits_mode": "dim"}, "free_bits_mode 'dim' is unknown")],
)
def test_bad_loss_settings(kwargs, message):
    with pytest.raises(VaelabError, match=message):
        VAELoss(**kwargs)
