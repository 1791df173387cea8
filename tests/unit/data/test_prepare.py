"""Normalization on observed entries only, the patient split and mini-batch indices."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vaelab.data.batches import batch_indices
from vaelab.data.prepare import Normalizer, split_patients
from vaelab.errors import VaelabError

VITALS = ("HR", "SBP", "TEMP")


@pytest.fixture
def observed_data():
    """Values with garbage (NaN, Inf, huge numbers) in every unobserved cell."""
    rng = np.random.default_rng(0)
    values = rng.normal([80.0, 120.0, 37.0], [10.0, 15.0, 0.5], size=(30, 20, 3))
    masks = (rng.random(values.shape) < 0.6).astype(np.float32)
    garbage = rng.choice([np.nan, np.inf, -1e30, 0.0], size=values.shape)
    return np.where(masks == 1, values, garbage), masks


def test_fit_uses_observed_entries_only(observed_data):
    values, masks = observed_data
    norm = Normalizer.fit(values, masks, VITALS)
    for k in range(3):
        seen = values[..., k][masks[..., k] == 1]
        assert norm.mean[k] == pytest.approx(seen.mean())
        assert norm.std[k] == pytest.approx(seen.std())
    assert norm.vitals == VITALS


def test_transform_is_finite_and_zero_where_unobserved(observed_data):
    values, masks = observed_data
    norm = Normalizer.fit(values, masks, VITALS)
    x = norm.transform(values, masks)
    assert x.dtype == np.float32 and x.shape == values.shape
    assert np.isfinite(x).all()
    assert (x[masks == 0] == 0).all()
    seen = masks == 1
    np.testing.assert_allclose(x[seen], ((values - norm.mean) / norm.std)[seen], rtol=1e-5, atol=1e-5)
    assert abs(x[..., 0][seen[..., 0]].mean()) < 1e-4


def test_inverse_recovers_observed_values(observed_data):
    values, masks = observed_data
    norm = Normalizer.fit(values, masks, VITALS)
    back = norm.inverse(norm.transform(values, masks))
    seen = masks == 1
    np.testing.assert_allclose(back[seen], values[seen], rtol=1e-5)


def test_constant_vital_gets_unit_std():
    values = np.stack([np.full((4, 5), 36.6), np.arange(20.0).reshape(4, 5)], axis=-1)
    norm = Normalizer.fit(values, np.ones_like(values), ("TEMP", "HR"))
    assert norm.std[0] == 1.0 and norm.std[1] > 0
    np.testing.assert_allclose(norm.transform(values, np.ones_like(values))[..., 0], 0.0, atol=1e-6)


def test_never_observed_vital_is_named(observed_data):
    values, masks = observed_data
    masks = masks.copy()
    masks[..., 1] = 0
    with pytest.raises(VaelabError, match="'SBP' is never observed"):
        Normalizer.fit(values, masks, VITALS)


def test_vital_count_mismatch(observed_data):
    values, masks = observed_data
    norm = Normalizer.fit(values, masks, VITALS)
    with pytest.raises(VaelabError, match="vitals"):
        norm.transform(values[..., :2], masks[..., :2])
    with pytest.raises(VaelabError, match="vitals"):
        Normalizer.fit(values, masks, VITALS[:2])


def test_dict_round_trip_through_json_and_torch(observed_data, tmp_path):
    values, masks = observed_data
    norm = Normalizer.fit(values, masks, VITALS)
    d = norm.to_dict()
    assert json.loads(json.dumps(d)) == d
    torch.save({"normalizer": d}, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt", weights_only=True)["normalizer"]
    again = Normalizer.from_dict(loaded)
    np.testing.assert_array_equal(again.mean, norm.mean)
    np.testing.assert_array_equal(again.std, norm.std)
    assert again.vitals == norm.vitals
    np.testing.assert_array_equal(again.transform(values, masks), norm.transform(values, masks))


def test_from_dict_with_missing_key():
    with pytest.raises(VaelabError, match="std"):
        Normalizer.from_dict({"mean": [0.0], "vitals": ["HR"]})


@pytest.mark.parametrize("n", [2, 3, 10, 101])
def test_split_is_disjoint_covering_and_deterministic(n):
    train, val = split_patients(n, 0.2, seed=5)
    assert len(train) >= 1 and len(val) >= 1
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(n))
    assert np.array_equal(train, np.sort(train)) and np.array_equal(val, np.sort(val))
    again = split_patients(n, 0.2, seed=5)
    assert np.array_equal(train, again[0]) and np.array_equal(val, again[1])


def test_split_size_and_seed():
    train, val = split_patients(100, 0.2, seed=0)
    assert (len(train), len(val)) == (80, 20)
    assert not np.array_equal(val, split_patients(100, 0.2, seed=1)[1])


@pytest.mark.parametrize("n", [0, 1])
def test_split_needs_two_patients(n):
    with pytest.raises(VaelabError, match="at least 2 patients"):
        split_patients(n)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_rejects_bad_fraction(fraction):
    with pytest.raises(VaelabError, match="val_fraction"):
        split_patients(10, fraction)


@pytest.mark.parametrize("n, batch_size", [(10, 3), (10, 10), (10, 32), (1, 1), (0, 4)])
@pytest.mark.parametrize("shuffle", [False, True])
def test_batches_cover_every_index_once(n, batch_size, shuffle):
    batches = list(batch_indices(n, batch_size, shuffle, np.random.default_rng(0)))
    assert all(len(b) == batch_size for b in batches[:-1])
    assert all(1 <= len(b) <= batch_size for b in batches)
    joined = np.concatenate(batches) if batches else np.array([], dtype=int)
    assert np.array_equal(np.sort(joined), np.arange(n))
    if not shuffle:
        assert np.array_equal(joined, np.arange(n))


def test_shuffled_batches_follow_the_rng():
    first = np.concatenate(list(batch_indices(50, 8, True, np.random.default_rng(3))))
    again = np.concatenate(list(batch_indices(50, 8, True, np.random.default_rng(3))))
    other = np.concatenate(list(batch_indices(50, 8, True, np.random.default_rng(4))))
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert not np.array_equal(first, np.arange(50))


def test_batch_size_must_be_positive():
    with pytest.raises(VaelabError, match="batch_size"):
        list(batch_indices(5, 0, False))
