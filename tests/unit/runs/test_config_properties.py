"""Random values for every numeric config key, drawn by hypothesis: negative, zero, huge, NaN, Inf
and values of the wrong type. Each one is accepted, refused by Hydra while composing (a wrong
type), or refused by ``validate`` with one VaelabError line ``config <key>: ...`` that names the
key: never another exception.

The keys come from the Config dataclasses themselves (every group option's, plus eval, sweep and
the top level), so a new numeric setting is covered without listing it here.
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing

import pytest
from hydra.errors import ConfigCompositionException, OverrideParseException
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from vaelab.errors import VaelabError
from vaelab.runs.config import GROUP_OPTIONS, ExperimentConfig, validate

# Mandatory settings of the group options that have them, so only the drawn value can be wrong.
REQUIRED = {"data=h5": ["data.path=layer2.h5"], "data=physionet2019": ["data.source=psv"]}


def numeric_fields(config_cls: type) -> list[str]:
    """The int and float (or Optional int/float) fields of a Config dataclass."""
    hints = typing.get_type_hints(config_cls)
    numeric = []
    for f in dataclasses.fields(config_cls):
        kinds = set(typing.get_args(hints[f.name]) or (hints[f.name],)) - {type(None)}
        if kinds and kinds <= {int, float}:
            numeric.append(f.name)
    return numeric


def numeric_keys() -> list[tuple[tuple[str, ...], str]]:
    """(the group choice that has it, dotted key) for every numeric setting."""
    keys = []
    for group, options in GROUP_OPTIONS.items():
        for name, node in options.items():
            choice = f"{group}={name}"
            cls = node if isinstance(node, type) else type(node)
            keys += [((choice, *REQUIRED.get(choice, [])), f"{group}.{field}") for field in numeric_fields(cls)]
    hints = typing.get_type_hints(ExperimentConfig)
    for f in dataclasses.fields(ExperimentConfig):
        if f.name in GROUP_OPTIONS:
            continue
        if dataclasses.is_dataclass(hints[f.name]):
            keys += [((), f"{f.name}.{field}") for field in numeric_fields(hints[f.name])]
        elif f.name in numeric_fields(ExperimentConfig):
            keys.append(((), f.name))
    return sorted(set(keys))


KEYS = numeric_keys()

values = st.one_of(
    st.sampled_from([math.nan, math.inf, -math.inf]),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 0.0, -0.0, 1e-300, 1e300]),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["lots", "''", "[1,2]", "{a: 1}", "null", "true", "1.5", "0x10"]),  # wrong types
)


def as_override(value) -> str:
    """A value as the command line writes it (Hydra's grammar: nan, inf, -inf, 1e+300)."""
    return value if isinstance(value, str) else repr(float(value)) if isinstance(value, float) else str(value)


@settings(
    max_examples=100,  # Hydra composes in ~0.2 s
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(key=st.sampled_from(KEYS), value=values)
def test_any_value_of_a_numeric_key_is_accepted_or_refused_in_one_line(compose_config, key, value):
    choice, name = key
    override = f"{name}={as_override(value)}"
    drew = "a non-finite float" if isinstance(value, float) and not math.isfinite(value) else type(value).__name__
    event(f"drew {drew}")
    try:
        cfg = compose_config([*choice, override])
    except (ConfigCompositionException, OverrideParseException):
        event("refused by Hydra")
        return
    try:
        validate(cfg)
    except VaelabError as exc:
        message = str(exc)
        assert "\n" not in message and re.match(r"config [\w.]+: ", message), message
        assert name in message, message
        event("refused by validate")
        return
    event(f"accepted {drew}")


def test_every_config_class_contributes_numeric_keys():
    names = {name for _, name in KEYS}
    assert {"model.latent_dim", "model.hidden_dim", "loss.beta", "schedule.warmup_epochs", "trainer.lr", "trainer.threads"} <= names
    assert {"data.memory_mb", "data.n_patients", "eval.mi_batch_size", "sweep.penalty", "seed"} <= names


@pytest.mark.parametrize(
    "override",
    [
        "seed=-1",
        "data.seed=-1",
        "eval.probe_seed=-1",
        "eval.probe_test_fraction=2",
        "eval.probe_test_fraction=nan",
        "eval.n_plot_patients=-5",
    ],
)
def test_values_a_run_cannot_use_are_refused_by_validate(compose_config, override):
    with pytest.raises(VaelabError, match=f"config {override.split('=')[0]}: "):
        validate(compose_config([override]))
