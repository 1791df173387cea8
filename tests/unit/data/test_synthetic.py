"""The built-in synthetic ICU data: physiology, missingness, and factors that really drive the vitals."""

from __future__ import annotations

import numpy as np
import pytest

from vaelab.data.layer2 import DEFAULT_VITALS, read_layer2, write_layer2
from vaelab.data.synthetic import generate_synthetic
from vaelab.errors import VaelabError

FACTORS = ("level", "daily_amplitude", "daily_cos", "daily_sin", "trend", "episode_rate")


@pytest.fixture(scope="module")
def data():
    return generate_synthetic(n_patients=600, seq_len=168, seed=1)


def observed(data, vital: str) -> np.ndarray:
    k = data.vitals.index(vital)
    return data.values[..., k][data.masks[..., k] == 1]


def per_patient(data, vital: str, stat) -> np.ndarray:
    """`stat(hours, values)` of each patient's observed series of one vital."""
    k = data.vitals.index(vital)
    hours = np.arange(data.seq_len)
    out = []
    for x, m in zip(data.values[..., k], data.masks[..., k] == 1):
        out.append(stat(hours[m], x[m]))
    return np.array(out)


def corr(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def test_shapes_and_format(data, tmp_path):
    assert data.values.shape == data.masks.shape == (600, 168, 7)
    assert data.values.dtype == np.float32 and data.masks.dtype == np.float32
    assert data.vitals == DEFAULT_VITALS
    assert data.patient_ids[0] == "S00000" and len(set(data.patient_ids)) == 600
    assert set(np.unique(data.masks)) == {0.0, 1.0}
    assert np.array_equal(np.isnan(data.values), data.masks == 0)  # NaN exactly where unobserved
    path = tmp_path / "synthetic.h5"
    write_layer2(path, data)  # the data set satisfies every rule of the on-disk format
    assert read_layer2(path).factors.keys() == data.factors.keys()


def test_deterministic_per_seed():
    a, b, c = (generate_synthetic(20, 48, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.masks, b.masks)
    for name in FACTORS:
        np.testing.assert_array_equal(a.factors[name], b.factors[name])
    assert not np.array_equal(a.masks, c.masks)
    assert not np.allclose(a.factors["level"], c.factors["level"])


@pytest.mark.parametrize(
    "vital, low, high",
    [("HR", 70, 100), ("SBP", 105, 135), ("DBP", 52, 70), ("MAP", 70, 90), ("RR", 15, 21), ("SPO2", 95, 100), ("TEMP", 36.6, 37.4)],
)
def test_observed_medians_are_physiological(data, vital, low, high):
    assert low <= np.median(observed(data, vital)) <= high


@pytest.mark.parametrize(
    "vital, low, high",
    [("HR", 40, 160), ("SBP", 70, 190), ("DBP", 30, 110), ("RR", 6, 40), ("SPO2", 80, 100), ("TEMP", 35, 40.5)],
)
def test_bulk_of_values_in_physiological_range(data, vital, low, high):
    p5, p95 = np.percentile(observed(data, vital), [5, 95])
    assert low <= p5 and p95 <= high


def test_spo2_never_above_100(data):
    assert observed(data, "SPO2").max() <= 100


def test_map_is_coupled_to_sbp_and_dbp(data):
    k = [data.vitals.index(v) for v in ("SBP", "DBP", "MAP")]
    all_three = (data.masks[..., k] == 1).all(axis=-1)
    sbp, dbp, mean_ap = (data.values[..., i][all_three] for i in k)
    residual = np.abs(mean_ap - (sbp + 2 * dbp) / 3)
    assert np.median(residual) < 2 and np.percentile(residual, 95) < 5
    assert (dbp < sbp).all()


def test_missingness_is_realistic(data):
    rate = {v: data.masks[..., data.vitals.index(v)].mean() for v in data.vitals}
    for vital in ("HR", "SPO2", "RR"):
        assert 0.8 <= rate[vital] <= 0.97
    assert 0.75 <= rate["SBP"] <= 0.95
    assert 0.15 <= rate["TEMP"] <= 0.40
    never_dbp = (data.masks[..., data.vitals.index("DBP")].sum(axis=1) == 0).mean()
    assert 0.1 <= never_dbp <= 0.4
    nothing = (data.masks.sum(axis=2) == 0).mean()  # hours with no vital at all (transport gaps)
    assert 0.005 <= nothing <= 0.1


def test_every_patient_observed(data):
    assert (data.masks.sum(axis=(1, 2)) > 0).all()


def test_factors_present_and_non_degenerate(data):
    assert set(data.factors) == set(FACTORS)
    for name in FACTORS:
        assert data.factors[name].shape == (600,)
        assert data.factors[name].std() > 0.1
    f = data.factors
    np.testing.assert_allclose(f["daily_cos"] ** 2 + f["daily_sin"] ** 2, f["daily_amplitude"] ** 2)
    assert (f["daily_amplitude"] > 0).all() and (f["episode_rate"] > 0).all()


def test_daily_rhythm_matches_stored_phase(data):
    def fourier(kind):
        wave = np.cos if kind == "cos" else np.sin
        return per_patient(data, "HR", lambda t, x: np.mean((x - x.mean()) * wave(2 * np.pi * t / 24)))

    assert corr(fourier("cos"), data.factors["daily_cos"]) > 0.7
    assert corr(fourier("sin"), data.factors["daily_sin"]) > 0.7


def test_severity_level_moves_vitals_together(data):
    level = data.factors["level"]
    assert corr(per_patient(data, "HR", lambda t, x: x.mean()), level) > 0.3
    assert corr(per_patient(data, "RR", lambda t, x: x.mean()), level) > 0.3
    assert corr(per_patient(data, "SBP", lambda t, x: x.mean()), level) < -0.3


def test_trend_is_the_multi_day_slope(data):
    slope = per_patient(data, "HR", lambda t, x: np.polyfit(t, x, 1)[0])
    assert corr(slope, data.factors["trend"]) > 0.6


def test_episode_rate_drives_short_excursions(data):
    tachycardic_hours = per_patient(data, "HR", lambda t, x: np.mean(x > np.median(x) + 15))
    assert corr(tachycardic_hours, data.factors["episode_rate"]) > 0.3


@pytest.mark.parametrize("n_patients, seq_len", [(8, 24), (8, 745)])
def test_small_and_long_series(n_patients, seq_len):
    d = generate_synthetic(n_patients, seq_len, seed=3)
    assert d.values.shape == (n_patients, seq_len, 7)
    assert (d.masks.sum(axis=(1, 2)) > 0).all()
    assert all(d.factors[name].shape == (n_patients,) for name in FACTORS)


def test_vital_selection_keeps_the_same_patients():
    full = generate_synthetic(10, 48, seed=2)
    some = generate_synthetic(10, 48, seed=2, vitals=("TEMP", "HR"))
    assert some.vitals == ("TEMP", "HR")
    np.testing.assert_array_equal(some.values, full.values[..., [6, 0]])


@pytest.mark.parametrize("kwargs", [{"vitals": ("HR", "GCS")}, {"vitals": ()}, {"vitals": ("HR", "HR")}, {"n_patients": 0}, {"seq_len": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(VaelabError, match="synthetic data"):
        generate_synthetic(**kwargs)
