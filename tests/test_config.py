import pytest

from vaelab.config import LSTMModelConfig, MultiscaleModelConfig, SyntheticDataConfig, H5DataConfig, validate
from vaelab.errors import VaelabError


def test_defaults_are_the_users_plan(compose_config):
    e = validate(compose_config())
    assert isinstance(e.model, MultiscaleModelConfig) and isinstance(e.data, SyntheticDataConfig)
    assert (e.model.latent_dim, e.model.base_channels) == (32, 64)
    assert (e.loss.beta, e.loss.free_bits, e.loss.free_bits_mode) == (0.5, 2.0, "batch")
    assert (e.schedule.kind, e.schedule.warmup_epochs, e.schedule.cycle_epochs) == ("cyclical", 30, 40)
    assert (e.trainer.epochs, e.trainer.batch_size, e.trainer.patience, e.trainer.lr) == (150, 64, 30, 1e-3)


def test_the_users_command_line_composes(compose_config):
    e = validate(compose_config(["model=multiscale", "loss.free_bits=2.0"]))
    assert e.loss.free_bits == 2.0 and isinstance(e.model, MultiscaleModelConfig)


def test_groups_switch(compose_config):
    e = validate(compose_config(["model=lstm", "schedule=linear", "data=h5", "data.path=/x.h5", "trainer=debug"]))
    assert isinstance(e.model, LSTMModelConfig) and e.model.hidden_dim == 128 and e.model.n_layers == 2
    assert e.schedule.kind == "linear"
    assert isinstance(e.data, H5DataConfig) and e.data.path == "/x.h5"
    assert e.trainer.epochs < 10


def test_the_plans_model_is_a_named_variant(compose_config):
    from vaelab.config import PlanModelConfig

    e = validate(compose_config(["model=plan", "model.base_channels=32"]))
    assert isinstance(e.model, PlanModelConfig) and e.model.base_channels == 32
    e = validate(compose_config(["model.latent_groups=true", "model.pooling=moments_std", "loss.spectral_weight=0.5",
                                 "model.spectral_head=false"]))
    assert (e.model.latent_groups, e.model.pooling, e.loss.spectral_weight) == (True, "moments_std", 0.5)
    assert not e.model.spectral_head


def test_default_model_is_the_best_of_multiscale_recovery(compose_config):
    """experiments/multiscale_recovery, round 2: one shared latent with BN-VAE, the per-branch loss at
    0.4, the spectral head at 0.3 and the quantile head at 1.5, with the plan's beta and free bits."""
    e = validate(compose_config())
    assert (e.model.latent_groups, e.loss.branch_weight, e.model.spectral_head, e.loss.band_power_weight) == (False, 0.4, True, 0.3)
    assert (e.model.quantile_head, e.loss.quantile_weight, e.model.posterior_bn) == (True, 1.5, 0.6)
    assert (e.loss.beta, e.loss.free_bits, e.loss.free_bits_mode) == (0.5, 2.0, "batch")
    assert (e.model.pooling, e.loss.spectral_weight) == ("moments", 0.0)


def test_the_yaml_defaults_are_the_schemas_so_the_benchmark_measures_the_default_model(compose_config):
    from dataclasses import asdict

    from vaelab.bench import LOSS_KWARGS, MODEL_KWARGS
    from vaelab.config import LossConfig, MultiscaleModelConfig

    e = validate(compose_config())
    assert asdict(e.model) == asdict(MultiscaleModelConfig()) and asdict(e.loss) == asdict(LossConfig())
    assert all(getattr(e.model, k) == v for k, v in MODEL_KWARGS["vaelab"].items())
    assert all(getattr(e.loss, k) == v for k, v in LOSS_KWARGS["vaelab"].items())


@pytest.mark.parametrize(
    "override, message",
    [
        ("loss.beta=-1", "config loss.beta: must be >= 0, got -1.0"),
        ("loss.free_bits=-0.5", "config loss.free_bits: must be >= 0"),
        ("loss.free_bits_mode=dims", "config loss.free_bits_mode: must be one of batch, sample"),
        ("schedule.cycle_epochs=10", "config schedule.cycle_epochs: (10) is shorter than schedule.warmup_epochs (30)"),
        ("trainer.lr=0", "config trainer.lr: must be > 0"),
        ("trainer.batch_size=0", "config trainer.batch_size: must be >= 1"),
        ("model.dropout=1.5", "config model.dropout: must be in [0, 1)"),
        ("data.seq_len=12", "config data.seq_len: must be >= 24 hours"),
        ("data.val_fraction=1.0", "config data.val_fraction: must be between 0 and 1"),
        ("+data.vitals=[HR,GLUCOSE]", "config data.vitals: unknown vital 'GLUCOSE'"),
        ("model.pooling=max", "config model.pooling: must be one of moments, moments_std, got 'max'"),
        ("model.latent_dim=3 model.latent_groups=true", "config model.latent_groups: needs latent_dim >= 4"),
        ("loss.spectral_weight=-1", "config loss.spectral_weight: must be >= 0"),
        ("loss.band_power_weight=-1", "config loss.band_power_weight: must be >= 0"),
        ("loss.quantile_weight=-1", "config loss.quantile_weight: must be >= 0"),
        ("model.posterior_bn=-0.5", "config model.posterior_bn: must be >= 0 (0 = off), got -0.5"),
    ],
)
def test_out_of_range_values_fail_with_one_line_naming_the_key(compose_config, override, message):
    with pytest.raises(VaelabError) as err:
        validate(compose_config(override.split()))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_misspelt_key_and_wrong_type_are_refused_at_composition(compose_config):
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="fre_bits"):
        compose_config(["loss.fre_bits=1"])
    with pytest.raises(ConfigCompositionException, match="beta"):
        compose_config(["loss.beta=lots"])
