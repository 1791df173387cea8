import pytest

from vaelab.data.sources import H5DataConfig, SyntheticDataConfig
from vaelab.errors import VaelabError
from vaelab.models import LSTMConfig as LSTMModelConfig
from vaelab.models import MultiScaleConfig as MultiscaleModelConfig
from vaelab.runs.config import validate


def test_defaults_are_the_users_plan(compose_config):
    e = validate(compose_config())
    assert isinstance(e.model, MultiscaleModelConfig) and isinstance(e.data, SyntheticDataConfig)
    assert (e.model.latent_dim, e.model.base_channels) == (256, 64)  # the real-data probe table's choice (experiments/physionet2019)
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
    from vaelab.models.plan_baseline import PlanConfig as PlanModelConfig

    e = validate(compose_config(["model=plan", "model.base_channels=32"]))
    assert isinstance(e.model, PlanModelConfig) and e.model.base_channels == 32
    e = validate(
        compose_config(["model.latent_groups=true", "model.pooling=moments_std", "loss.spectral_weight=0.5", "model.spectral_head=false"])
    )
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


def test_the_cli_the_classes_and_the_builder_share_one_set_of_defaults(compose_config, tmp_path):
    from dataclasses import asdict

    from vaelab import MultiScaleConv1DVAE, MultiScaleVAELoss, VAEBuilder
    from vaelab.losses import LossConfig

    e = validate(compose_config())
    cli_model = {k: v for k, v in asdict(e.model).items() if k != "name"}
    assert cli_model == asdict(MultiscaleModelConfig()) == asdict(MultiScaleConv1DVAE().config)
    assert asdict(e.loss) == asdict(LossConfig()) == asdict(MultiScaleVAELoss().config)
    builder = VAEBuilder(tmp_path / "x.h5", tmp_path / "out")
    built = builder.experiment()
    assert {k: v for k, v in asdict(built.model).items() if k != "name"} == cli_model
    assert (built.loss, built.schedule, built.trainer, built.eval, built.seed) == (e.loss, e.schedule, e.trainer, e.eval, e.seed)
    assert built.data.val_fraction == validate(compose_config(["data=h5", "data.path=x.h5"])).data.val_fraction


def test_the_builder_takes_every_option_of_the_cli_and_refuses_others(tmp_path):
    from vaelab import VAEBuilder

    builder = VAEBuilder(
        tmp_path / "x.h5",
        tmp_path / "out",
        spectral_head=False,
        posterior_bn=0.0,
        branch_weight=1.0,
        quantile_weight=0.0,
        schedule_kind="linear",
        device="cpu",
        latent_groups=True,
    )
    e = builder.experiment(epochs=7)
    assert (e.model.spectral_head, e.model.posterior_bn, e.model.latent_groups) == (False, 0.0, True)
    assert (e.loss.branch_weight, e.loss.quantile_weight, e.schedule.kind, e.trainer.epochs) == (1.0, 0.0, "linear", 7)
    with pytest.raises(VaelabError, match="'hidden_units' is no option of model 'multiscale'"):
        VAEBuilder(tmp_path / "x.h5", tmp_path / "out", hidden_units=3)
    with pytest.raises(VaelabError, match="'spectral_head' is no option of model 'lstm'"):
        VAEBuilder(tmp_path / "x.h5", tmp_path / "out", model_type="lstm", spectral_head=True)


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
