import dataclasses
import math

import pytest
import torch

from vaelab import LSTMVAE, MultiScaleConv1DVAE, MultiScaleDecoder, MultiScaleEncoder, MultiScaleVAELoss, VaelabError
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


def test_dropout_matches_torch_dropout_in_distribution():
    from vaelab.models.multiscale import Dropout

    torch.manual_seed(0)
    x = torch.ones(200, 64, 50)
    drop = Dropout(0.2).train()
    y = drop(x)
    zeroed = (y == 0).float().mean().item()
    assert zeroed == pytest.approx(0.2, abs=0.01)  # the same fraction as nn.Dropout(0.2)
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / 0.8))  # the same rescaling
    assert y.mean().item() == pytest.approx(1.0, abs=0.01)
    assert torch.equal(drop.eval()(x), x)  # identity at evaluation
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)


def test_latent_groups_give_each_decoder_branch_its_own_dimensions():
    decoder = MultiScaleDecoder(output_dim=3, seq_len=48, latent_dim=10, base_channels=8, dropout=0.0, latent_groups=True).eval()
    assert [b - a for a, b in decoder.latent_slices] == [3, 3, 2, 2]
    z = torch.randn(2, 10, requires_grad=True)
    _, branches = decoder(z, return_branches=True)
    for (a, b), out in zip(decoder.latent_slices, branches):
        (grad,) = torch.autograd.grad(out.sum(), z, retain_graph=True)
        used = grad.abs().sum(0) > 0
        assert used[a:b].all() and used.sum() == b - a  # its own group, and nothing else
    shared = MultiScaleDecoder(output_dim=3, seq_len=48, latent_dim=10, base_channels=8, latent_groups=False)
    assert all((a, b) == (0, 10) for a, b in shared.latent_slices)


def test_latent_groups_need_a_dimension_per_branch():
    from vaelab.errors import VaelabError

    with pytest.raises(VaelabError, match="latent_dim >= 4"):
        MultiScaleConv1DVAE(input_dim=2, seq_len=48, latent_dim=3, base_channels=8, latent_groups=True)
    with pytest.raises(VaelabError, match="config model.pooling: must be one of moments, moments_std, got 'max'"):
        MultiScaleConv1DVAE(input_dim=2, seq_len=48, latent_dim=4, base_channels=8, pooling="max")


def test_std_pooling_sees_how_much_a_signal_moves():
    calm = torch.zeros(1, 1, 96)
    spiky = torch.zeros(1, 1, 96)
    spiky[0, 0, 40:44] = 3.0  # an episode: mean, trend and daily moments change little
    pool = TemporalPool(stride=1, with_std=True)
    assert pool.n_moments == 5
    assert pool(calm)[0, -1].item() == 0.0
    assert pool(spiky)[0, -1].item() == pytest.approx(spiky.std(unbiased=False).item())
    assert TemporalPool(stride=1).n_moments == 4


@pytest.mark.parametrize("seq_len", [24, 25, 100, 745])
def test_encoder_input_pooling_keeps_any_length(seq_len):
    vae = MultiScaleConv1DVAE(input_dim=3, seq_len=seq_len, latent_dim=4, base_channels=8, pooling="moments_std").eval()
    x = torch.randn(2, seq_len, 3)
    mu, logvar = vae.encode_distribution(x, torch.ones_like(x))
    assert mu.shape == (2, 4) and torch.isfinite(mu).all() and torch.isfinite(logvar).all()
    # the coarse branches read hour averages: a change confined to one hour still reaches them
    x2 = x.clone()
    x2[:, seq_len // 2, :] += 5.0
    assert not torch.allclose(
        vae.encoder.branch_multiday(torch.cat([x, torch.ones_like(x)], -1).transpose(1, 2)),
        vae.encoder.branch_multiday(torch.cat([x2, torch.ones_like(x2)], -1).transpose(1, 2)),
    )


def test_plan_model_is_buildable_by_name_for_comparisons():
    from vaelab.models import build_model
    from vaelab.models.plan_baseline import PlanMultiScaleConv1DVAE

    model = build_model("plan_multiscale", input_dim=7, seq_len=168, latent_dim=8, base_channels=8)
    assert isinstance(model, PlanMultiScaleConv1DVAE)
    recon, mu, logvar = model(torch.randn(2, 168, 7))
    assert recon.shape == (2, 168, 7) and mu.shape == (2, 8)


def test_spectral_head_predicts_log_band_power_per_vital_and_trains():
    from vaelab.signal import log_band_power, octave_bands

    torch.manual_seed(0)
    vae = MultiScaleConv1DVAE(input_dim=3, seq_len=96, latent_dim=6, base_channels=8, spectral_head=True, quantile_head=False)
    x = torch.randn(5, 96, 3)
    mask = (torch.rand_like(x) < 0.8).float()
    out = vae.forward_output(x, mask)
    assert out.band_power.shape == (5, 3, octave_bands(96).shape[1]) == log_band_power(x, mask).shape and out.quantiles is None
    loss = MultiScaleVAELoss(band_power_weight=2.0)
    with_head = loss.objective(out, x, mask)
    without = loss.objective(dataclasses.replace(out, band_power=None), x, mask)
    assert with_head.band_power.item() > 0 and without.band_power.item() == 0.0
    assert with_head.total.item() == pytest.approx(without.total.item() + 2.0 * with_head.band_power.item(), rel=1e-5)
    with_head.total.backward()
    assert vae.spectral_head[0].weight.grad.abs().sum() > 0 and vae.encoder.fc_mu.weight.grad.abs().sum() > 0
    assert MultiScaleConv1DVAE(input_dim=3, seq_len=96, latent_dim=6, base_channels=8, spectral_head=False).heads(out.mu)[0] is None


def test_posterior_bn_fixes_the_spread_of_the_means_and_keeps_batches_of_one_working():
    from vaelab.errors import VaelabError
    from vaelab.losses import gaussian_kl

    torch.manual_seed(0)
    vae = MultiScaleConv1DVAE(input_dim=3, seq_len=48, latent_dim=6, base_channels=8, posterior_bn=0.5)
    x = torch.randn(32, 48, 3)
    for scale in (1.0, 30.0):  # training mode: each dimension's means have spread gamma whatever the encoder's scale ...
        with torch.no_grad():
            vae.encoder.fc_mu.weight.mul_(scale)
        _, mu, logvar = vae(x)
        assert torch.allclose(mu.std(dim=0, unbiased=False), torch.full((6,), 0.5), atol=1e-2)
    # ... so the KL per dimension averaged over the batch is at least gamma**2 / 2 at logvar 0.
    assert (gaussian_kl(mu, torch.zeros_like(logvar)).mean(dim=0) >= 0.5**2 / 2 - 1e-3).all()
    _, mu_one, _ = vae(x[:1])  # a last batch of one patient must not crash training
    assert mu_one.shape == (1, 6) and torch.isfinite(mu_one).all()
    vae.eval()
    _, mu_eval, _ = vae(x)  # evaluation: running statistics, deterministic
    assert torch.equal(mu_eval, vae(x)[1])
    plain = MultiScaleConv1DVAE(input_dim=3, seq_len=48, latent_dim=6, base_channels=8, posterior_bn=0.0)
    assert plain.posterior_bn is None
    with pytest.raises(VaelabError, match="posterior_bn"):
        MultiScaleConv1DVAE(input_dim=3, seq_len=48, latent_dim=6, base_channels=8, posterior_bn=-1.0)


def test_quantile_head_predicts_each_vitals_quantiles_and_trains_the_encoder():
    from vaelab.signal import QUANTILE_LEVELS

    torch.manual_seed(0)
    vae = MultiScaleConv1DVAE(input_dim=3, seq_len=48, latent_dim=6, base_channels=8, quantile_head=True, spectral_head=False)
    x = torch.randn(5, 48, 3)
    mask = (torch.rand_like(x) < 0.8).float()
    out = vae.forward_output(x, mask)
    assert out.quantiles.shape == (5, 3, len(QUANTILE_LEVELS)) and out.band_power is None
    t = MultiScaleVAELoss(quantile_weight=1.0).objective(out, x, mask)
    assert t.quantile.item() > 0
    t.total.backward()
    assert vae.quantile_head[0].weight.grad.abs().sum() > 0 and vae.encoder.fc_mu.weight.grad.abs().sum() > 0
    assert MultiScaleConv1DVAE(input_dim=3, seq_len=48, latent_dim=6, base_channels=8, quantile_head=False).heads(out.mu)[1] is None


def test_observed_fractions_are_each_blocks_share_of_observed_hours():
    from vaelab.signal import OBSERVATION_BLOCK_HOURS, n_observation_blocks, observed_fractions

    hours = 2 * OBSERVATION_BLOCK_HOURS + 3  # two whole blocks and a short last one
    mask = torch.zeros(2, hours, 2)
    mask[0, : OBSERVATION_BLOCK_HOURS + 2, 0] = 1.0  # vital 0 of patient 0: the first block and 2 hours of the second
    mask[1, -1, 1] = 1.0  # vital 1 of patient 1: only the last hour
    fractions = observed_fractions(mask)
    assert fractions.shape == (2, 2, n_observation_blocks(hours)) == (2, 2, 3)
    expected = torch.zeros(2, 2, 3)
    expected[0, 0, :2] = torch.tensor([1.0, 2 / OBSERVATION_BLOCK_HOURS])
    expected[1, 1, 2] = 1 / 3  # the short last block: a share of its own 3 hours
    assert torch.allclose(fractions, expected)


def test_observation_head_predicts_observed_fractions_and_trains_the_encoder():
    from vaelab.signal import head_targets, n_observation_blocks

    torch.manual_seed(0)
    vae = MultiScaleConv1DVAE(input_dim=3, seq_len=48, latent_dim=6, base_channels=8, observation_head=True)
    x = torch.randn(5, 48, 3)
    mask = (torch.rand_like(x) < 0.6).float()
    mask[0, 30:] = 0.0  # a stay that ends inside the window
    out = vae.forward_output(x, mask)
    assert out.observation.shape == (5, 3, n_observation_blocks(48)) == head_targets(x, mask).observation.shape
    assert ((out.observation > 0) & (out.observation < 1)).all()
    loss = MultiScaleVAELoss(observation_weight=2.0)
    with_head = loss.objective(out, x, mask)
    without = loss.objective(dataclasses.replace(out, observation=None), x, mask)
    assert with_head.observation.item() > 0 and without.observation.item() == 0.0
    assert with_head.total.item() == pytest.approx(without.total.item() + 2.0 * with_head.observation.item(), rel=1e-5)
    with_head.total.backward()
    assert vae.observation_head[0].weight.grad.abs().sum() > 0 and vae.encoder.fc_mu.weight.grad.abs().sum() > 0
    assert MultiScaleConv1DVAE(input_dim=3, seq_len=48, latent_dim=6, base_channels=8, observation_head=False).heads(out.mu)[2] is None


def test_one_output_type_and_the_plans_tuples_agree():
    torch.manual_seed(0)
    vae = MultiScaleConv1DVAE(input_dim=3, seq_len=48, latent_dim=6, base_channels=8).eval()
    x = torch.randn(4, 48, 3)
    out = vae.forward_output(x, sample=False)
    assert torch.equal(out.z, out.mu) and len(out.branches) == 4
    assert out.band_power is not None and out.quantiles is not None  # the recommended model has both heads
    torch.manual_seed(1)
    recon, mu, logvar, branches = vae(x, return_branches=True)
    torch.manual_seed(1)
    sampled = vae.forward_output(x)
    assert torch.equal(recon, sampled.recon) and torch.equal(mu, sampled.mu) and torch.equal(logvar, sampled.logvar)
    assert all(torch.equal(a, b) for a, b in zip(branches, sampled.branches))


def test_models_take_their_config_and_the_registry_builds_each_by_name():
    from vaelab.models import MODELS, LSTMConfig, MultiScaleConfig, build_model

    config = MultiScaleConfig(latent_dim=5, base_channels=8, posterior_bn=0.0)
    assert MultiScaleConv1DVAE(3, 48, config=config).config is config
    assert MultiScaleConv1DVAE(3, 48, 5, 8, posterior_bn=0.0).config == config  # the plan's positional arguments
    assert LSTMVAE(3, 16, 5, 48, 1).config == LSTMConfig(latent_dim=5, hidden_dim=16, n_layers=1)
    for name, (config_cls, model_cls) in MODELS.items():
        assert type(build_model(name, 3, 48, latent_dim=4)) is model_cls
        assert config_cls().latent_dim == (256 if name == "multiscale" else 32)  # the plan's models keep the plan's 32
    with pytest.raises(VaelabError, match="model 'lstm' has no option 'base_channels'"):
        build_model("lstm", 3, 48, base_channels=8)
    with pytest.raises(VaelabError, match="model_type 'gru' is unknown"):
        build_model("gru", 3, 48)
