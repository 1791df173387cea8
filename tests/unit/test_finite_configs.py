"""Every Config dataclass refuses a non-finite float itself, so a Python caller building one directly
(``LossConfig(beta=inf)``) gets the same one line as the CLI, not a run that trains on Inf."""

import dataclasses
import math

import pytest

from vaelab.data.sources import SyntheticDataConfig
from vaelab.errors import VaelabError
from vaelab.evaluation.evaluate import EvalConfig
from vaelab.losses import LossConfig
from vaelab.models import MultiScaleConfig
from vaelab.schedules import ScheduleConfig
from vaelab.sweeps.collapse_rule import CollapseRule
from vaelab.sweeps.config import SweepConfig
from vaelab.training import TrainConfig

CONFIGS = {
    LossConfig: "loss",
    TrainConfig: "trainer",
    ScheduleConfig: "schedule",
    EvalConfig: "eval",
    SweepConfig: "sweep",
    CollapseRule: "sweep.collapse",
    MultiScaleConfig: "model",
    SyntheticDataConfig: "data",
}
FLOAT_FIELDS = [
    (cls, f.name)
    for cls in CONFIGS
    for f in dataclasses.fields(cls)
    if isinstance(getattr(cls(), f.name), float)  # the fields whose default is a float
]


def test_every_config_has_float_fields_to_check():
    assert {cls for cls, _ in FLOAT_FIELDS} >= {LossConfig, TrainConfig, EvalConfig, SweepConfig, CollapseRule, MultiScaleConfig}


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
@pytest.mark.parametrize(("cls", "name"), FLOAT_FIELDS, ids=[f"{c.__name__}.{n}" for c, n in FLOAT_FIELDS])
def test_a_non_finite_float_is_refused_by_its_config(cls, name, value):
    with pytest.raises(VaelabError, match=rf"^config {CONFIGS[cls]}\.{name}: "):
        cls(**{name: value})
