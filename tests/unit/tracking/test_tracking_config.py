"""The ``logger`` group as Hydra composes it from the real conf/ tree: off by default, each option
and a list of them, misspelt keys refused while composing."""

import pytest
from hydra.errors import ConfigCompositionException

from vaelab.errors import VaelabError
from vaelab.runs.config import validate
from vaelab.runs.pipeline import training_fingerprint
from vaelab.tracking import LoggerConfig, MLflowConfig, TensorBoardConfig

BOTH = LoggerConfig(tensorboard=TensorBoardConfig(), mlflow=MLflowConfig())


def test_no_tracker_by_default(compose_config):
    cfg = compose_config()
    assert cfg.logger is None and validate(cfg).logger is None


@pytest.mark.parametrize(
    "choice, expected",
    [
        ("logger=tensorboard", LoggerConfig(tensorboard=TensorBoardConfig())),
        ("logger=mlflow", LoggerConfig(mlflow=MLflowConfig())),
        ("logger=many", BOTH),
        ("logger=[tensorboard,mlflow]", BOTH),
    ],
)
def test_each_option_and_a_list_of_them_switch_on_their_trackers(compose_config, choice, expected):
    assert validate(compose_config([choice])).logger == expected


def test_settings_are_overridable_and_misspelt_ones_refused(compose_config):
    cfg = compose_config(["logger=many", "logger.mlflow.tracking_uri=sqlite:///x.db", "logger.tensorboard.images=false"])
    logger = validate(cfg).logger
    assert logger.mlflow.tracking_uri == "sqlite:///x.db" and logger.tensorboard.images is False
    with pytest.raises(ConfigCompositionException, match="logger.mlflow.tracking_ur"):
        compose_config(["logger=mlflow", "logger.mlflow.tracking_ur=x"])
    with pytest.raises(ConfigCompositionException):  # mlflow's settings need logger=mlflow
        compose_config(["logger=tensorboard", "logger.mlflow.tracking_uri=x"])


def test_an_empty_experiment_name_fails_at_start_up(compose_config):
    with pytest.raises(VaelabError, match="config logger.mlflow.experiment_name: must not be empty"):
        validate(compose_config(["logger=mlflow", "logger.mlflow.experiment_name=''"]))


def test_trackers_do_not_change_what_a_saved_state_resumes(compose_config):
    plain, tracked = (validate(compose_config(o)) for o in ([], ["logger=many"]))
    assert training_fingerprint(plain) == training_fingerprint(tracked)
