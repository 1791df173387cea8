"""The probe table on data with a known answer: a label read off one latent dimension, a random label,
a continuous label linear in a dimension; label kinds, NaN rows, skips, the bootstrap's metrics."""

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score

from vaelab.errors import VaelabError
from vaelab.evaluation.probe_table import (
    COLUMNS,
    FEATURE_SETS,
    MIN_CLASS_ROWS,
    MIN_TEST_ROWS,
    MIN_TRAIN_ROWS,
    PAIRED_COLUMNS,
    PROBES,
    _resample_weights,
    label_kind,
    probe_table,
    table_from_metrics,
    table_metrics,
    weighted_auroc,
    weighted_average_precision,
    weighted_r2,
)
from vaelab.evaluation.probes import TEST_FRACTION, classification_probe

N = 500


@pytest.fixture(scope="module")
def latent():
    return np.random.default_rng(0).standard_normal((N, 4))


def rows(table, label, features="embedding", probe="linear"):
    part = table[(table.label == label) & (table.features == features) & (table.probe == probe)]
    return {r.metric: r for r in part.itertuples()}


def test_a_label_thresholded_from_one_dimension_probes_near_1(latent):
    labels = {"septic": (latent[:, 2] > 0.8).astype(np.int8)}  # about 21 % positive
    table = probe_table(latent, labels, n_resamples=100)
    linear = rows(table, "septic")
    assert linear["auroc"].value > 0.98 and linear["auprc"].value > 0.9
    assert linear["auroc"].kind == "binary"
    assert rows(table, "septic", probe="gbt")["auroc"].value > 0.95
    for r in table.itertuples():
        assert r.ci_low <= r.value + 1e-12 and r.value <= r.ci_high + 1e-12
    assert linear["auroc"].n_test == round(N * TEST_FRACTION) and linear["auroc"].n_train == N - round(N * TEST_FRACTION)
    assert linear["auroc"].chance == 0.5 and linear["auprc"].chance == pytest.approx(labels["septic"].mean(), abs=0.01)


def test_a_random_label_probes_near_chance(latent):
    coin = np.random.default_rng(1).integers(0, 2, N)
    table = probe_table(latent, {"coin": coin}, n_resamples=100)
    for probe in PROBES:
        auroc = rows(table, "coin", probe=probe)["auroc"]
        assert abs(auroc.value - 0.5) < 0.12, (probe, auroc.value)
        assert auroc.ci_low < 0.5 < auroc.ci_high or abs(auroc.value - 0.5) < 0.1


def test_a_continuous_label_linear_in_a_dimension_gives_r2_near_1(latent):
    noise = np.random.default_rng(2).standard_normal(N)
    table = probe_table(latent, {"age": 60.0 + 12.0 * latent[:, 1] + 0.1 * noise}, n_resamples=100)
    r2 = rows(table, "age")["r2"]
    assert r2.kind == "continuous" and r2.value > 0.99 and r2.chance == 0.0
    assert rows(table, "age", probe="gbt")["r2"].value > 0.8
    assert set(table.metric) == {"r2"}


def test_nan_rows_are_left_out_and_the_rest_probed(latent):
    septic = latent[:, 0] > 0.0
    onset = np.where(septic, 5.0 + 3.0 * latent[:, 3], np.nan)  # an onset hour: NaN when never septic
    gender = np.where(np.arange(N) % 10 == 0, np.nan, (latent[:, 1] > 0).astype(float))  # binary with gaps
    table = probe_table(latent, {"onset": onset, "gender": gender}, n_resamples=50)
    r2 = rows(table, "onset")["r2"]
    assert r2.n_train + r2.n_test == septic.sum() and r2.value > 0.99
    auroc = rows(table, "gender")["auroc"]
    assert auroc.kind == "binary" and auroc.n_train + auroc.n_test == N - N // 10 and auroc.value > 0.98


def test_the_table_has_every_label_feature_set_probe_and_metric(latent):
    rng = np.random.default_rng(3)
    baseline = rng.standard_normal((N, 6))
    labels = {"binary": (latent[:, 0] > 0).astype(int), "continuous": latent[:, 1] + 0.1 * rng.standard_normal(N)}
    table = probe_table(latent, labels, baseline=baseline, n_resamples=20)
    assert tuple(table.columns) == COLUMNS + PAIRED_COLUMNS
    assert len(table) == len(FEATURE_SETS) * len(PROBES) * (2 + 1)
    assert list(dict.fromkeys(table.features)) == list(FEATURE_SETS)
    # The summary statistics here are noise; the concatenation keeps what the embedding knows.
    assert rows(table, "binary", "summary")["auroc"].value < 0.7
    assert rows(table, "binary", "embedding+summary")["auroc"].value > 0.95
    assert table.attrs["skipped"] == {}
    only_embedding = probe_table(latent, labels, n_resamples=20)
    assert set(only_embedding.features) == {"embedding"} and len(only_embedding) == len(PROBES) * 3


def test_the_linear_row_of_a_complete_binary_label_is_the_runs_probe(latent):
    rng = np.random.default_rng(4)
    sepsis = (latent[:, 0] + rng.standard_normal(N) > 1.2).astype(np.int8)
    table = probe_table(latent, {"sepsis": sepsis}, seed=7, n_resamples=10)
    run_probe = classification_probe(latent, sepsis, seed=7)
    linear = rows(table, "sepsis")
    assert linear["auroc"].value == pytest.approx(run_probe["auroc"])
    assert linear["auprc"].value == pytest.approx(run_probe["auprc"])
    assert linear["auroc"].n_test == run_probe["n_test"]


def test_the_table_is_seeded(latent):
    labels = {"y": (latent[:, 0] + np.random.default_rng(5).standard_normal(N) > 0).astype(int)}
    first = probe_table(latent, labels, seed=1, n_resamples=30)
    again = probe_table(latent, labels, seed=1, n_resamples=30)
    assert first.equals(again)
    other = probe_table(latent, labels, seed=2, n_resamples=30)
    assert not first[["value", "ci_low"]].equals(other[["value", "ci_low"]])
    # A label's interval does not depend on which other labels are in the table.
    with_more = probe_table(latent, {**labels, "z": latent[:, 1]}, seed=1, n_resamples=30)
    assert with_more[with_more.label == "y"].reset_index(drop=True).equals(first)


def test_labels_that_cannot_be_probed_are_skipped_with_a_note(latent):
    few = np.zeros(N)
    few[:3] = 1  # 3 positives cannot give MIN_CLASS_ROWS to both parts
    labels = {
        "constant": np.ones(N),
        "all_nan": np.full(N, np.nan),
        "few_positives": few,
        "few_rows": np.where(np.arange(N) < 8, latent[:, 0], np.nan),
        "ward": np.array(["a", "b", "c"] * (N // 3) + ["a"] * (N % 3)),
        "one_positive": np.r_[1, np.zeros(N - 1)],
        "kept": latent[:, 0],
    }
    table = probe_table(latent, labels, n_resamples=10)
    skipped = table.attrs["skipped"]
    assert set(skipped) == {"constant", "all_nan", "few_positives", "few_rows", "ward", "one_positive"}
    assert set(table.label) == {"kept"}
    assert "1 distinct" in skipped["constant"] and "0 distinct" in skipped["all_nan"]
    assert skipped["few_positives"] == f"1 positive and 149 negative test stays; needs {MIN_CLASS_ROWS} of each class"
    assert skipped["few_rows"] == f"5 training and 3 test stays; needs {MIN_TRAIN_ROWS} and {MIN_TEST_ROWS}"
    assert "too few for a stratified split" in skipped["one_positive"]
    assert "not numeric" in skipped["ward"]
    assert probe_table(latent, {}).empty and probe_table(latent, None).attrs["skipped"] == {}


def test_label_kinds():
    assert label_kind(np.array([0, 1, 1, 0])) == "binary"
    assert label_kind(np.array([0.0, np.nan, 1.0])) == "binary"
    assert label_kind(np.array([True, False])) == "binary"
    assert label_kind(np.array([2.0, 5.0, np.nan, 7.5])) == "continuous"
    assert label_kind(np.array([3, 3, 3])) is None and label_kind(np.array([np.nan, np.inf])) is None
    assert label_kind(np.array(["died", "alive", "died"], dtype=object)) == "binary"
    assert label_kind(np.array(["a", "b", "c"])) is None


def test_string_labels_take_the_larger_value_as_positive(latent):
    outcome = np.where(latent[:, 0] > 0.5, "died", "alive")
    linear = rows(probe_table(latent, {"outcome": outcome}, n_resamples=10), "outcome")
    assert linear["auroc"].value > 0.98 and linear["auprc"].chance == pytest.approx((outcome == "died").mean(), abs=0.02)


def test_bad_inputs_are_one_line(latent):
    with pytest.raises(VaelabError, match="label 'short'.*one value per stay"):
        probe_table(latent, {"ok": latent[:, 0], "short": np.zeros(10)})
    with pytest.raises(VaelabError, match="summary-statistics features have 10 rows"):
        probe_table(latent, {"ok": latent[:, 0]}, baseline=np.zeros((10, 3)))
    with pytest.raises(VaelabError, match="NaN"):
        probe_table(np.full((N, 2), np.nan), {"ok": latent[:, 0]})
    with pytest.raises(VaelabError, match="test_fraction"):
        probe_table(latent, {}, test_fraction=0.0)
    with pytest.raises(VaelabError, match="n_resamples"):
        probe_table(latent, {}, n_resamples=0)
    with pytest.raises(VaelabError, match="threads"):
        probe_table(latent, {}, threads=0)


def test_table_metrics_is_strict_json(latent):
    labels = {"y": (latent[:, 0] > 0).astype(int), "constant": np.zeros(N)}
    table = probe_table(latent, labels, baseline=latent[:, :2] ** 2, n_resamples=10)
    table.loc[0, "ci_low"] = np.nan  # an interval no resample could fill
    out = table_metrics(table)
    json.dumps(out, allow_nan=False)
    entry = out["probe_table"]["y"]["embedding"]["linear"]["auroc"]
    assert set(entry) == {"value", "ci_low", "ci_high", "n_train", "n_test", "chance", *PAIRED_COLUMNS} and entry["ci_low"] is None
    assert set(out["probe_table"]["y"]["summary"]["linear"]["auroc"]) == {"value", "ci_low", "ci_high", "n_train", "n_test", "chance"}
    assert set(out["probe_table"]["y"]["embedding"]) == set(PROBES)
    assert set(out["probe_table_skipped"]) == {"constant"}
    back = table_from_metrics(json.loads(json.dumps(out)))  # what a run's figure reads from metrics.json
    pd.testing.assert_frame_equal(back, table, check_dtype=False)
    assert back.attrs["skipped"] == table.attrs["skipped"]


def test_the_paired_interval_says_whether_the_embedding_adds_to_the_baseline(latent):
    """A label in the embedding and not in the baseline: the gain's interval lies above 0; the same
    label against a baseline that holds it as well as the embedding: the interval straddles 0."""
    rng = np.random.default_rng(7)
    labels = {"y": (latent[:, 1] + 0.3 * rng.standard_normal(N) > 0).astype(int)}
    noise = rng.standard_normal((N, 3))
    table = probe_table(latent, labels, baseline=noise, n_resamples=200)
    for probe in PROBES:
        both, alone = rows(table, "y", "embedding+summary", probe)["auroc"], rows(table, "y", "summary", probe)["auroc"]
        assert both.vs_summary == pytest.approx(both.value - alone.value)
        assert 0 < both.vs_summary_ci_low <= both.vs_summary <= both.vs_summary_ci_high
        assert np.isnan(alone.vs_summary) and np.isnan(alone.vs_summary_ci_low)
        assert rows(table, "y", "embedding", probe)["auroc"].vs_summary_ci_low > 0
    holding_it = np.c_[latent[:, 1], rng.standard_normal((N, 2))]  # the label's dimension beside other noise
    same = probe_table(latent, labels, baseline=holding_it, n_resamples=200)
    linear = rows(same, "y", "embedding", "linear")["auroc"]
    assert linear.vs_summary != 0 and linear.vs_summary_ci_low <= 0 <= linear.vs_summary_ci_high
    # without a baseline there is nothing to compare with
    assert probe_table(latent, labels, n_resamples=10).vs_summary.isna().all()


# --- the bootstrap's metrics: all resamples at once, equal to sklearn's with sample weights ----------


def test_weighted_metrics_equal_sklearn_on_each_resample():
    rng = np.random.default_rng(6)
    n = 60
    y = (rng.random(n) < 0.3).astype(int)
    score = np.round(rng.standard_normal(n) + y, 1)  # rounded: tied scores
    target, prediction = rng.standard_normal(n), rng.standard_normal(n)
    weights = _resample_weights(n, 40, seed=0, label="x")
    auroc, ap = weighted_auroc(y, score, weights), weighted_average_precision(y, score, weights)
    r2 = weighted_r2(target, target + 0.5 * prediction, weights)
    for i, w in enumerate(weights):
        assert auroc[i] == pytest.approx(roc_auc_score(y, score, sample_weight=w))
        assert ap[i] == pytest.approx(average_precision_score(y, score, sample_weight=w))
        drawn = np.repeat(np.arange(n), w.astype(int))  # the resample itself
        assert ap[i] == pytest.approx(average_precision_score(y[drawn], score[drawn]))
        assert r2[i] == pytest.approx(r2_score(target, target + 0.5 * prediction, sample_weight=w))
    ones = np.ones((1, n))
    assert weighted_auroc(y, score, ones)[0] == pytest.approx(roc_auc_score(y, score))
    assert weighted_average_precision(y, score, ones)[0] == pytest.approx(average_precision_score(y, score))


def test_weighted_metrics_are_nan_without_both_classes_or_spread():
    y, score = np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8])
    only_negatives = np.array([[1.0, 0.0, 3.0, 0.0]])
    assert np.isnan(weighted_auroc(y, score, only_negatives)[0])
    assert np.isnan(weighted_average_precision(y, score, only_negatives)[0])
    assert np.isnan(weighted_r2(np.array([1.0, 1.0, 2.0]), np.zeros(3), np.array([[2.0, 1.0, 0.0]]))[0])


def test_resample_weights_count_every_draw():
    weights = _resample_weights(25, 8, seed=3, label="sepsis")
    assert weights.shape == (8, 25) and (weights.sum(axis=1) == 25).all()
    np.testing.assert_array_equal(weights, _resample_weights(25, 8, seed=3, label="sepsis"))
    assert not np.array_equal(weights, _resample_weights(25, 8, seed=3, label="age"))


# --- the figure ------------------------------------------------------------------------------------


def test_the_figure_is_written(latent, tmp_path):
    from vaelab.plots.probes import plot_probe_table

    rng = np.random.default_rng(7)
    labels = {"y": (latent[:, 0] > 0).astype(int), "age": latent[:, 1], "noise": rng.standard_normal(N), "constant": np.zeros(N)}
    table = probe_table(latent[:200], {k: v[:200] for k, v in labels.items()}, baseline=rng.standard_normal((200, 3)), n_resamples=10)
    path = plot_probe_table(table, tmp_path / "plots" / "probe_table.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    empty = plot_probe_table(table.iloc[:0], tmp_path / "empty.png")
    assert empty.stat().st_size > 0
    with pytest.raises(VaelabError, match=r"\.png"):
        plot_probe_table(table, tmp_path / "table.pdf")
