import math

import pytest
import torch

from vaelab import LSTMVAE, MultiScaleConv1DVAE, MultiScaleDecoder, MultiScaleEncoder, MultiScaleVAELoss
from vaelab.models.multiscale import TemporalPool, fit_kernel


@pytest.mark.parametrize("seq_len", [745, 336, 168, 72, 48, 24])
def test_every_decoder_branch_makes_real_steps_to_the_end(seq_len):
    torch.manual_seed(0)
    decoder = MultiScaleDecoder(output_dim=7, seq_len=seq_len, latent_dim=8, base_channels=16, dropout=0.0).eval()
    recon, branches = decoder(torch.randn(3, 8), return_branches=True)
    assert recon.shape == (3, seq_len, 7)
    tail = math.ceil(0.3 * seq_len)
    for name, out in zip(("local", "hourly", "daily", "multiday"), branches):
        assert out.shape == (3, seq_len, 7)
        last = out[:, -tail:, :]
        # a replicated tail is constant over time; a real one varies
        assert (last - last[:, -1:, :]).abs().max() > 1e-6, f"branch {name} has a constant tail at seq_len {seq_len}"
        assert decoder.__getattr__(f"branch_{name}").start_length * decoder.__getattr__(f"branch_{name}").total_stride >= seq_len


def test_encoder_ignores_unobserved_values_but_sees_the_mask():
    torch.manual_seed(0)
    enc = MultiScaleEncoder(input_dim=3, seq_len=48, latent_dim=4, base_channels=8, dropout=0.0).eval()
    x = torch.randn(2, 48, 3)
    mask = (torch.rand(2, 48, 3) > 0.3).float()
    garbage = torch.where(mask > 0, x, torch.full_like(x, 1e3))
    mu1, _ = enc(x, mask)
    mu2, _ = enc(garbage, mask)
    assert torch.allclose(mu1, mu2)
    mu3, _ = enc(x * mask, torch.ones_like(mask))  # same zeros, but claimed observed
    assert not torch.allclose(mu1, mu3)


def test_encoder_treats_nan_as_missing_without_a_mask():
    enc = MultiScaleEncoder(input_dim=2, seq_len=24, latent_dim=3, base_channels=8).eval()
    x = torch.randn(2, 24, 2)
    x[0, :5, 0] = float("nan")
    mu, logvar = enc(x)
    assert torch.isfinite(mu).all() and torch.isfinite(logvar).all()


def test_encode_returns_posterior_means():
    vae = MultiScaleConv1DVAE(input_dim=2, seq_len=48, latent_dim=4, base_channels=8).eval()
    x = torch.randn(3, 48, 2)
    z1, mu, _ = vae.encode(x)
    z2, _, _ = vae.encode(x)
    assert torch.equal(z1, mu) and torch.equal(z1, z2)


def test_temporal_pool_keeps_the_daily_phase():
    hours = torch.arange(96.0)
    pool = TemporalPool(stride=1)
    peaks_at_6 = torch.cos(2 * math.pi * (hours - 6) / 24).view(1, 1, -1)
    peaks_at_18 = torch.cos(2 * math.pi * (hours - 18) / 24).view(1, 1, -1)
    a, b = pool(peaks_at_6), pool(peaks_at_18)
    assert a[0, 0].item() == pytest.approx(b[0, 0].item(), abs=1e-5)  # same mean: a global average cannot tell them apart
    assert not torch.allclose(a, b, atol=0.1)  # the pooled cos/sin components can
    assert TemporalPool(stride=16).n_moments == 2  # 16 h positions cannot resolve a day


def test_fit_kernel_shrinks_to_the_sequence():
    assert fit_kernel(255, 1000) == 255
    assert fit_kernel(255, 24) == 23
    assert fit_kernel(15, 2) == 1
    assert fit_kernel(5, 5) == 5


@pytest.mark.parametrize("seq_len", [24, 48, 72, 336])
def test_multiscale_trains_on_short_and_long_sequences(seq_len):
    torch.manual_seed(0)
    vae = MultiScaleConv1DVAE(input_dim=7, seq_len=seq_len, latent_dim=8, base_channels=16)
    loss = MultiScaleVAELoss(beta=0.5, free_bits=0.0, warmup_epochs=1, cycle_epochs=2)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2)
    x = torch.randn(6, seq_len, 7)
    losses = []
    for _ in range(5):
        recon, mu, logvar, branches = vae(x, return_branches=True)
        total, _, _ = loss(recon, x, mu, logvar, branch_recons=branches, beta=0.1)
        opt.zero_grad()
        total.backward()
        opt.step()
        losses.append(total.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < losses[0]


def test_lstm_baseline_has_the_same_forward_contract():
    vae = LSTMVAE(input_dim=7, hidden_dim=16, latent_dim=4, seq_len=30, n_layers=2)
    x = torch.randn(3, 30, 7)
    recon, mu, logvar = vae(x)
    assert recon.shape == (3, 30, 7) and mu.shape == (3, 4) and logvar.shape == (3, 4)
    recon, mu, logvar, branches = vae(x, torch.ones_like(x), return_branches=True)
    assert branches == []
    z, mu2, _ = vae.encode(x)
    assert torch.equal(z, mu2)
