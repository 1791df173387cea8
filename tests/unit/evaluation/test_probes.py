import numpy as np
import pytest

from vaelab.errors import VaelabError
from vaelab.evaluation.probes import (
    SUMMARY_STATISTICS,
    TEST_FRACTION,
    classification_probe,
    factor_r2,
    linear_factor_r2,
    pca_embeddings,
    seeded_split,
    summary_statistics,
)


def _radial_case(n=400, seed=0):
    rng = np.random.default_rng(seed)
    embeddings = rng.standard_normal((n, 4))
    embeddings[:, 2:] *= 0.05  # two barely used dimensions
    factors = {
        "radial": np.sqrt(embeddings[:, 0] ** 2 + embeddings[:, 1] ** 2) + 70.0,  # offset: no intercept trap
        "linear": 2.0 * embeddings[:, 0] - embeddings[:, 1],
        "noise": rng.standard_normal(n),
    }
    return embeddings, factors


# --- factor probes ---------------------------------------------------------------------------


def test_factor_r2_recovers_a_nonlinear_factor_and_not_noise():
    embeddings, factors = _radial_case()
    r2 = factor_r2(embeddings, factors)
    assert set(r2) == set(factors)
    assert r2["radial"] > 0.8
    assert r2["linear"] > 0.9
    assert -0.15 < r2["noise"] < 0.1
    assert all(isinstance(v, float) for v in r2.values())


def test_linear_probe_misses_the_radial_factor_that_the_kernel_probe_finds():
    embeddings, factors = _radial_case()
    linear = linear_factor_r2(embeddings, factors)
    nonlinear = factor_r2(embeddings, factors)
    assert linear["radial"] < 0.2
    assert nonlinear["radial"] > 0.8
    assert linear["linear"] > 0.99


def test_factor_r2_ignores_collapsed_dimensions():
    # 2 informative dims + 30 near-constant (collapsed) ones: standardizing them per dimension
    # alone would turn them into noise; the probe must still find the radial factor.
    embeddings, factors = _radial_case(n=400, seed=1)
    rng = np.random.default_rng(1)
    embeddings = np.concatenate([embeddings[:, :2], 1e-3 * rng.standard_normal((400, 30))], axis=1)
    assert factor_r2(embeddings, {"radial": factors["radial"]})["radial"] > 0.8


def test_constant_embeddings_give_no_r2():
    _, factors = _radial_case()
    constant = np.ones((400, 6))
    for probe in (factor_r2, linear_factor_r2):
        r2 = probe(constant, factors)
        assert all(v <= 0.05 for v in r2.values()), (probe.__name__, r2)


def test_factor_r2_is_seeded_and_rejects_bad_factors():
    embeddings, factors = _radial_case(n=150)
    factors = {"radial": factors["radial"]}
    first = factor_r2(embeddings, factors, seed=3)
    assert factor_r2(embeddings, factors, seed=3) == first
    assert factor_r2(embeddings, factors, seed=4) != first
    with pytest.raises(VaelabError, match="factor 'short'"):
        factor_r2(embeddings, {"short": np.zeros(10)})
    with pytest.raises(VaelabError, match="NaN"):
        linear_factor_r2(embeddings, {"gap": np.full(150, np.nan)})
    with pytest.raises(VaelabError, match="test_fraction"):
        factor_r2(embeddings, factors, test_fraction=1.0)


def test_factor_r2_reads_each_factor_from_its_own_dimension_at_a_realistic_size():
    rng = np.random.default_rng(2)
    embeddings = rng.standard_normal((600, 32))
    factors = {f"f{i}": np.sin(embeddings[:, i]) + 0.1 * rng.standard_normal(600) for i in range(6)}
    assert all(r2 > 0.5 for r2 in factor_r2(embeddings, factors).values())


# --- PCA baseline ----------------------------------------------------------------------------


def test_pca_embeddings_shape_and_clipping():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((20, 6, 3))
    masks = np.ones_like(x)
    assert pca_embeddings(x, masks, n_components=4).shape == (20, 4)
    assert pca_embeddings(x[:5], masks[:5], n_components=8).shape == (5, 5)
    np.testing.assert_array_equal(pca_embeddings(x, masks, seed=1), pca_embeddings(x, masks, seed=1))


def test_pca_embeddings_recovers_a_rank_k_signal():
    rng = np.random.default_rng(1)
    n, t, v, k = 200, 12, 4, 3
    latent = rng.standard_normal((n, k))
    x = (latent @ rng.standard_normal((k, t * v))).reshape(n, t, v) + 1e-3 * rng.standard_normal((n, t, v))
    scores = pca_embeddings(x, np.ones_like(x), n_components=k)
    # The k scores span the true latent space: regressing latent on scores is (almost) exact.
    design = np.column_stack([scores, np.ones(n)])
    coef, *_ = np.linalg.lstsq(design, latent, rcond=None)
    residual = latent - design @ coef
    assert np.sum(residual**2) / np.sum((latent - latent.mean(0)) ** 2) < 1e-4


def test_pca_embeddings_uses_the_mask_and_never_leaks_nan():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 5, 2))
    masks = (rng.random((30, 5, 2)) > 0.3).astype(float)
    x = np.where(masks > 0, x, np.nan)
    scores = pca_embeddings(x, masks, n_components=3)
    assert np.all(np.isfinite(scores))
    # The mask is part of the features: identical values with different masks embed differently.
    same_values = np.zeros((30, 5, 2))
    assert np.ptp(pca_embeddings(same_values, masks, n_components=1)) > 0


# --- summary statistics ----------------------------------------------------------------------


def test_summary_statistics_on_a_hand_made_array():
    nan = np.nan
    # patient 0: vital 0 at hours 0 and 2; vital 1 never; vital 2 every hour.
    # patient 1: vital 0 only at hour 1; vital 1 at hours 0 and 3; vital 2 never.
    values = np.array(
        [
            [[1.0, nan, 5.0], [nan, nan, 6.0], [3.0, nan, 7.0], [nan, nan, 10.0]],
            [[nan, 2.0, nan], [4.0, nan, nan], [nan, nan, nan], [99.0, 6.0, nan]],
        ]
    )
    masks = np.isfinite(values).astype(float)
    masks[1, 3, 0] = 0.0  # a value present but not marked observed is ignored
    features = summary_statistics(values, masks)
    assert features.shape == (2, 6 * 3)
    assert SUMMARY_STATISTICS == ("mean", "std", "min", "max", "last", "fraction_observed")
    by_stat = features.reshape(2, 6, 3)  # (patient, statistic, vital)
    np.testing.assert_allclose(
        by_stat[0],
        [
            [2.0, 0.0, 7.0],
            [1.0, 0.0, np.sqrt(3.5)],
            [1.0, 0.0, 5.0],
            [3.0, 0.0, 10.0],
            [3.0, 0.0, 10.0],
            [0.5, 0.0, 1.0],
        ],
    )
    np.testing.assert_allclose(
        by_stat[1],
        [
            [4.0, 4.0, 0.0],
            [0.0, 2.0, 0.0],
            [4.0, 2.0, 0.0],
            [4.0, 6.0, 0.0],
            [4.0, 6.0, 0.0],
            [0.25, 0.5, 0.0],
        ],
    )
    assert not np.any(np.isnan(features))


def test_summary_statistics_rejects_nan_at_observed_entries():
    values = np.full((1, 2, 1), np.nan)
    with pytest.raises(VaelabError, match="observed"):
        summary_statistics(values, np.ones_like(values))


# --- classification probe --------------------------------------------------------------------


def test_classification_probe_on_separable_data():
    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.2).astype(int)
    features = rng.standard_normal((400, 5)) + 3.0 * labels[:, None]
    result = classification_probe(features, labels)
    assert set(result) == {"auroc", "auprc", "n_train", "n_test", "positive_rate"}
    assert result["auroc"] > 0.9
    assert result["auprc"] > 0.8
    assert result["n_train"] + result["n_test"] == 400
    assert result["n_test"] == 120
    assert result["positive_rate"] == pytest.approx(labels.mean())
    assert isinstance(result["n_train"], int) and isinstance(result["auroc"], float)


def test_classification_probe_on_noise_is_chance():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 2000)
    result = classification_probe(rng.standard_normal((2000, 5)), labels)
    assert 0.43 < result["auroc"] < 0.57


def test_classification_probe_accepts_string_labels():
    rng = np.random.default_rng(2)
    labels = np.where(rng.random(200) < 0.5, "died", "alive")
    features = rng.standard_normal((200, 3)) + 3.0 * (labels == "died")[:, None]
    # The larger value ("died" > "alive") is the positive class.
    assert classification_probe(features, labels)["auroc"] > 0.9


def test_classification_probe_rejects_a_single_class():
    with pytest.raises(VaelabError, match="both classes"):
        classification_probe(np.zeros((50, 3)), np.ones(50))
    with pytest.raises(VaelabError, match="stratified split"):
        classification_probe(np.zeros((50, 3)), np.r_[np.zeros(49), 1])


def test_the_validation_probe_scores_a_part_of_the_training_patients_and_never_reads_the_test_patients():
    rng = np.random.default_rng(3)
    features = rng.standard_normal((600, 4))
    labels = (features[:, 0] + 0.1 * rng.standard_normal(600) > 0.8).astype(int)  # thresholded from one dimension
    _, test = seeded_split(600, 0, TEST_FRACTION, stratify=labels)
    result = classification_probe(features, labels, held_out="validation")
    assert result["auroc"] > 0.97
    assert result["n_train"] + result["n_test"] == 600 - len(test)  # fitted and scored inside the training part
    scrambled = features.copy()
    scrambled[test] = rng.standard_normal((len(test), 4))  # the test patients' features become noise ...
    assert classification_probe(scrambled, labels, held_out="validation") == result  # ... and nothing moves,
    assert classification_probe(scrambled, labels)["auroc"] < 0.7  # while the test probe falls to chance


def test_the_validation_probe_of_a_random_label_is_near_chance():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 3000)
    assert abs(classification_probe(rng.standard_normal((3000, 5)), labels, held_out="validation")["auroc"] - 0.5) < 0.07


def test_the_validation_probe_refuses_what_it_cannot_split():
    with pytest.raises(VaelabError, match="held_out must be one of test, validation"):
        classification_probe(np.zeros((50, 3)), np.r_[np.zeros(25), np.ones(25)], held_out="train")
    labels = np.r_[np.zeros(20), np.ones(2)]  # one positive for training, one for testing: none left to validate on
    features = np.random.default_rng(0).standard_normal((22, 2))
    assert classification_probe(features, labels)["n_test"] == 7  # the test probe still works
    with pytest.raises(VaelabError, match="cannot split a validation part off the 15 training patients"):
        classification_probe(features, labels, held_out="validation")


# --- the shared split ------------------------------------------------------------------------------


def test_seeded_split_is_the_probes_one_split():
    labels = np.r_[np.ones(20), np.zeros(80)]
    train, test = seeded_split(100, seed=3, test_fraction=0.3, stratify=labels)
    assert len(test) == 30 and labels[test].sum() == 6  # stratified: the positive rate kept
    assert sorted(np.r_[train, test]) == list(range(100))
    again = seeded_split(100, seed=3, test_fraction=0.3, stratify=labels)
    np.testing.assert_array_equal(train, again[0])
    assert not np.array_equal(test, seeded_split(100, seed=4, test_fraction=0.3, stratify=labels)[1])
    assert seeded_split(100, seed=3)[1].shape == (round(100 * TEST_FRACTION),)
