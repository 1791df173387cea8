import pytest

from vaelab import BetaSchedule, VaelabError


def test_constant_is_beta_from_the_start():
    s = BetaSchedule(beta=0.3, kind="constant", warmup_epochs=10, cycle_epochs=20)
    assert [s(e) for e in (0, 5, 25)] == [0.3, 0.3, 0.3]


def test_linear_ramps_then_holds():
    s = BetaSchedule(beta=1.0, kind="linear", warmup_epochs=4, cycle_epochs=4)
    assert [s(e) for e in range(7)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cyclical_restarts_every_cycle_fu_et_al():
    s = BetaSchedule(beta=0.5, kind="cyclical", warmup_epochs=2, cycle_epochs=4)
    assert [s(e) for e in range(9)] == [0.0, 0.25, 0.5, 0.5, 0.0, 0.25, 0.5, 0.5, 0.0]


def test_zero_warmup_means_full_beta():
    assert BetaSchedule(beta=0.7, kind="cyclical", warmup_epochs=0, cycle_epochs=5)(0) == 0.7


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"beta": -0.1}, "config loss.beta: must be >= 0"),
        ({"kind": "cosine"}, "config schedule.kind: must be one of constant, linear, cyclical, got 'cosine'"),
        ({"warmup_epochs": 50, "cycle_epochs": 40}, "config schedule.cycle_epochs: (40) is shorter than schedule.warmup_epochs (50)"),
        ({"warmup_epochs": -1}, "config schedule.warmup_epochs: must be >= 0"),
        ({"cycle_epochs": 0, "warmup_epochs": 0}, "config schedule.cycle_epochs: must be >= 1"),
    ],
)
def test_bad_schedules_fail_with_a_clear_message(kwargs, message):
    with pytest.raises(VaelabError) as err:
        BetaSchedule(**({"beta": 0.5} | kwargs))  # beta is the loss's: no default here
    assert message in str(err.value)
