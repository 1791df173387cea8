"""Every sampler config composes with a search preset and builds the Optuna sampler it names."""

import optuna
import pytest
from hydra.utils import instantiate

from hydra_plugins.vaelab_sweeper.total_trials import SAMPLER_TARGETS


@pytest.mark.parametrize(
    "choice, sampler",
    [
        (None, optuna.samplers.TPESampler),
        ("gp", optuna.samplers.GPSampler),
        ("nsgaiii", optuna.samplers.NSGAIIISampler),
        ("random", optuna.samplers.RandomSampler),
        ("qmc", optuna.samplers.QMCSampler),
    ],
)
def test_a_sampler_is_selected_by_config_and_seeded(compose_config, choice, sampler):
    overrides = ["hparams_search=collapse", "seed=7"] + ([f"hydra/sweeper/sampler={choice}"] if choice else [])
    cfg = compose_config(overrides, return_hydra_config=True)
    built = instantiate(cfg.hydra.sweeper.sampler, _execution_whitelist_=SAMPLER_TARGETS)
    assert isinstance(built, sampler)
    assert cfg.hydra.sweeper.sampler.seed == 7


def test_tpe_follows_optuna_5s_multivariate_default(compose_config):
    cfg = compose_config(["hparams_search=collapse"], return_hydra_config=True)
    assert cfg.hydra.sweeper.sampler.multivariate is True
    assert instantiate(cfg.hydra.sweeper.sampler, _execution_whitelist_=SAMPLER_TARGETS)._multivariate is True
