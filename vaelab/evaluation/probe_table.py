"""The downstream probe table: every per-stay label, two probes, three feature sets, bootstrap intervals.

What an embedding says about every label the data holds, beside what hand-made features say:

* **Labels.** Each ``labels/<name>`` array is one label. Its kind comes from its values
  (:func:`label_kind`): *binary* when it has exactly two distinct finite values (the larger is the
  positive class, as in ``classification_probe``), *continuous* when it has more. Only the stays
  where the label is finite take part (``sepsis_onset_hour`` is NaN for stays that never turn
  septic, so its probe is over the septic stays). String labels with two distinct values are
  binary; other string labels are skipped.
* **Probes.** ``linear``: logistic regression, balanced class weights (binary; AUROC and AUPRC)
  or ridge with alpha by leave-one-out CV (continuous; R²), both on standardized features
  (``probes.linear_classifier`` / ``probes.linear_regressor``, the run's own probe). ``gbt``:
  scikit-learn's HistGradientBoostingClassifier / HistGradientBoostingRegressor with their default
  settings (``random_state`` set to the seed, which matters only for the early-stopping split that
  the defaults switch on above 10,000 training stays), a nonlinear read-out with no tuning.
* **Feature sets.** ``embedding`` (the posterior means), ``summary`` (the six per-vital summary
  statistics of the raw window, ``probes.summary_statistics``) and ``embedding+summary`` (the two
  side by side: what the embedding adds to the baseline).
* **Split.** Per label, one seeded patient split of its finite stays with ``probes.seeded_split``
  (test share ``probes.TEST_FRACTION``, seed ``seed``), stratified for binary labels: for a binary
  label without NaN this is ``classification_probe``'s split, so the ``sepsis`` / ``embedding`` /
  ``linear`` row equals a run's ``probe_auroc``. Every feature set and probe of a label uses the
  same split, so their rows compare on the same test stays.
* **Intervals.** ``value`` is the metric on all test stays; ``ci_low`` / ``ci_high`` are the 2.5th
  and 97.5th percentiles of the metric over :data:`BOOTSTRAP_RESAMPLES` resamples of the test
  stays with replacement (the fitted probes are not refitted: the interval covers the test sample,
  not the training sample). The resamples are seeded by ``seed`` and the label's name, and shared
  by every row of the label (paired). A resample without both classes is left out of a binary
  label's interval.
* **Against the baseline.** ``vs_summary`` is the row's metric minus the ``summary`` row's of the
  same label, probe and metric, with its interval ``vs_summary_ci_low`` / ``vs_summary_ci_high``
  from the same resamples (a paired bootstrap: both rows scored on each resample): on the
  ``embedding+summary`` row, what the embedding adds to the hand-made features, and whether the
  interval excludes 0. NaN on the ``summary`` rows and without a baseline.
* **Skips.** A label with too few finite stays for the split, fewer than :data:`MIN_TRAIN_ROWS` /
  :data:`MIN_TEST_ROWS` stays in train / test, fewer than :data:`MIN_CLASS_ROWS` stays of a class
  in either part, or a constant value in train, is left out of the table with a note in
  ``table.attrs["skipped"]`` (label -> reason), not an error.
"""

from __future__ import annotations

import logging
import zlib

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score
from threadpoolctl import threadpool_limits

from ..errors import VaelabError
from .probes import TEST_FRACTION, _check_features, _check_fraction, linear_classifier, linear_regressor, seeded_split

log = logging.getLogger(__name__)

BOOTSTRAP_RESAMPLES = 200  # resamples of the test stays behind each interval
CI_LEVEL = 0.95  # the intervals' coverage (percentile bootstrap)
MIN_TRAIN_ROWS = 10  # a label needs this many finite stays in the training part ...
MIN_TEST_ROWS = 5  # ... and this many in the test part
MIN_CLASS_ROWS = 2  # a binary label needs this many stays of each class in each part

FEATURE_SETS = ("embedding", "summary", "embedding+summary")
PROBES = ("linear", "gbt")
METRICS = {"binary": ("auroc", "auprc"), "continuous": ("r2",)}
COLUMNS = ("label", "kind", "features", "probe", "metric", "value", "ci_low", "ci_high", "n_train", "n_test", "chance")
PAIRED_COLUMNS = ("vs_summary", "vs_summary_ci_low", "vs_summary_ci_high")  # after COLUMNS; absent from older tables


class _Skip(Exception):
    """A label the table leaves out; the message is the note."""


def label_kind(values) -> str | None:
    """``"binary"`` (two distinct finite values, or two distinct strings), ``"continuous"`` (more
    than two distinct finite numbers) or None (fewer than two, or strings with more than two)."""
    values = np.asarray(values)
    if values.dtype.kind in "biuf":
        finite = values.astype(np.float64)
        distinct = np.unique(finite[np.isfinite(finite)])
        return None if len(distinct) < 2 else "binary" if len(distinct) == 2 else "continuous"
    distinct = np.unique(values[values != ""].astype(str))
    return "binary" if len(distinct) == 2 else None


def _label_rows(values: np.ndarray) -> tuple[str, np.ndarray, np.ndarray]:
    """(kind, rows taking part, target at those rows: 0/1 for binary, float for continuous)."""
    kind = label_kind(values)
    if values.dtype.kind in "biuf":
        numbers = values.astype(np.float64)
        rows = np.flatnonzero(np.isfinite(numbers))
        if kind is None:
            distinct = np.unique(numbers[rows])
            raise _Skip(f"{len(distinct)} distinct finite value(s) in {len(rows)} stays: nothing to predict")
        y = numbers[rows]
    else:
        strings = values.astype(str)
        rows = np.flatnonzero(strings != "")
        if kind is None:
            raise _Skip(f"not numeric, and {len(np.unique(strings[rows]))} distinct value(s) instead of 2")
        y = strings[rows]
    if kind == "binary":
        y = (y == np.unique(y)[1]).astype(np.int64)
    return kind, rows, y


def _split(kind: str, y: np.ndarray, seed: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Positions in ``y`` of the training and test stays, or _Skip saying why there are too few."""
    n = len(y)
    try:
        train, test = seeded_split(n, seed, test_fraction, stratify=y if kind == "binary" else None)
    except ValueError:
        if kind == "binary":
            raise _Skip(f"{n} stays ({int(y.sum())} positive) are too few for a stratified split") from None
        raise _Skip(f"{n} stays are too few for a split with test_fraction={test_fraction}") from None
    if len(train) < MIN_TRAIN_ROWS or len(test) < MIN_TEST_ROWS:
        raise _Skip(f"{len(train)} training and {len(test)} test stays; needs {MIN_TRAIN_ROWS} and {MIN_TEST_ROWS}")
    if kind == "binary":
        for part, rows in (("training", train), ("test", test)):
            positives = int(y[rows].sum())
            if min(positives, len(rows) - positives) < MIN_CLASS_ROWS:
                raise _Skip(f"{positives} positive and {len(rows) - positives} negative {part} stays; needs {MIN_CLASS_ROWS} of each class")
    elif np.ptp(y[train]) == 0:
        raise _Skip(f"constant over the {len(train)} training stays")
    return train, test


def label_split(values, seed: int = 0, test_fraction: float = TEST_FRACTION) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The table's view of one label: (kind, stays taking part, their target, training and test
    positions into those stays), so a peer trained on a label holds out exactly the table's test
    stays. A label the table would skip raises VaelabError with the skip's note."""
    try:
        kind, rows, y = _label_rows(np.asarray(values))
        train, test = _split(kind, y, seed, test_fraction)
    except _Skip as note:
        raise VaelabError(str(note)) from None
    return kind, rows, y, train, test


def _model(kind: str, probe: str, seed: int):
    if probe == "linear":
        return linear_classifier() if kind == "binary" else linear_regressor()
    if kind == "binary":
        return HistGradientBoostingClassifier(random_state=seed)
    return HistGradientBoostingRegressor(random_state=seed)


def _predict(kind: str, probe: str, seed: int, x_train, y_train, x_test) -> np.ndarray:
    """The probe's score of each test stay: P(positive) for binary labels, the prediction otherwise."""
    model = _model(kind, probe, seed).fit(x_train, y_train)
    return model.predict_proba(x_test)[:, 1] if kind == "binary" else model.predict(x_test)


def probe_table(
    embedding: np.ndarray,
    labels: dict[str, np.ndarray] | None,
    baseline: np.ndarray | None = None,
    seed: int = 0,
    test_fraction: float = TEST_FRACTION,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    threads: int | None = 1,
) -> pd.DataFrame:
    """The probe table (module docstring) of every label in ``labels`` from ``embedding``.

    ``embedding`` (N, d) are the stays' posterior means; ``labels`` maps each label's name to an
    (N,) array (a Layer-2 file's ``labels/`` group); ``baseline`` (N, k) are the summary-statistics
    features of the same stays (``summary_statistics(values, masks)``), None to probe the embedding
    alone (the ``summary`` and ``embedding+summary`` rows are then absent). Returns one row per
    label, feature set, probe and metric, columns :data:`COLUMNS`: ``kind`` (binary / continuous),
    ``value`` with its bootstrap interval ``ci_low`` / ``ci_high``, the stays ``n_train`` /
    ``n_test`` of the label's split, and ``chance`` (what an uninformative score gets: AUROC 0.5,
    AUPRC the test positive rate, R² 0). Labels left out are in ``table.attrs["skipped"]``.

    ``threads`` caps the OpenMP and BLAS threads of the fits (None: the libraries' default, every
    core). One thread is the default: the table is many small fits, the trees' OpenMP threads slow
    down by orders of magnitude on cores other processes (sweep workers) also use, and the result
    is the same.
    """
    _check_fraction(test_fraction)
    if n_resamples < 1:
        raise VaelabError(f"n_resamples must be at least 1, got {n_resamples}")
    if threads is not None and threads < 1:
        raise VaelabError(f"threads must be at least 1 (or None for every core), got {threads}")
    embedding = _check_features(embedding, "embeddings")
    n = embedding.shape[0]
    features = {"embedding": embedding}
    if baseline is not None:
        baseline = _check_features(baseline, "summary-statistics features")
        if baseline.shape[0] != n:
            raise VaelabError(f"summary-statistics features have {baseline.shape[0]} rows but the embedding has {n} stays")
        features["summary"] = baseline
        features["embedding+summary"] = np.concatenate([embedding, baseline], axis=1)

    labels = {name: np.asarray(values) for name, values in (labels or {}).items()}
    for name, values in labels.items():  # every label checked before the first fit
        if values.shape != (n,):
            raise VaelabError(f"label {name!r} has shape {values.shape}; expected ({n},), one value per stay")

    rows, skipped = [], {}
    with threadpool_limits(limits=threads):
        for name, values in labels.items():
            _probe_label(name, values, features, seed, test_fraction, n_resamples, rows, skipped)
    table = pd.DataFrame(rows, columns=[*COLUMNS, *PAIRED_COLUMNS])
    table.attrs["skipped"] = skipped
    return table


def _probe_label(name, values, features, seed, test_fraction, n_resamples, rows, skipped) -> None:
    """Append the label's rows to ``rows``, or its note to ``skipped``."""
    try:
        kind, label_rows, y, train, test = label_split(values, seed, test_fraction)
    except VaelabError as note:
        skipped[name] = str(note)
        log.info("probe table: label %r skipped: %s", name, note)
        return
    weights = _resample_weights(len(test), n_resamples, seed, name)
    scored = {}  # (features, probe, metric) -> (value, the value on every resample)
    for feature_name, x in features.items():
        x = x[label_rows]
        for probe in PROBES:
            score = _predict(kind, probe, seed, x[train], y[train], x[test])
            for metric in METRICS[kind]:
                scored[feature_name, probe, metric] = _metric(metric, y[test], score, weights)
    for (feature_name, probe, metric), (value, resampled) in scored.items():
        low, high = _interval(resampled)
        chance = {"auroc": 0.5, "auprc": float(y[test].mean()), "r2": 0.0}[metric]
        baseline = scored.get(("summary", probe, metric)) if feature_name != "summary" else None
        if baseline is None:
            paired = (np.nan, np.nan, np.nan)
        else:
            paired = (value - baseline[0], *_interval(resampled - baseline[1]))
        rows.append((name, kind, feature_name, probe, metric, value, low, high, len(train), len(test), chance, *paired))


def table_metrics(table: pd.DataFrame) -> dict:
    """The table as JSON-ready nested dicts for metrics.json: ``{"probe_table": {label: {features:
    {probe: {metric: {"value", "ci_low", "ci_high", "n_train", "n_test", "chance"[, "vs_summary",
    "vs_summary_ci_low", "vs_summary_ci_high"]}}}}}, "probe_table_skipped": {label: note}}``; NaN
    (an interval no resample could fill) becomes None, and the ``vs_summary`` keys are left out of
    rows without that comparison. :func:`table_from_metrics` reads it back."""

    def plain(x: float) -> float | None:
        return float(x) if np.isfinite(x) else None

    nested: dict = {}
    for row in table.to_dict("records"):
        by_probe = nested.setdefault(row["label"], {}).setdefault(row["features"], {}).setdefault(row["probe"], {})
        entry = {key: plain(row[key]) for key in ("value", "ci_low", "ci_high")}
        entry |= {"n_train": int(row["n_train"]), "n_test": int(row["n_test"]), "chance": plain(row["chance"])}
        if np.isfinite(row.get("vs_summary", np.nan)):
            entry |= {key: plain(row[key]) for key in PAIRED_COLUMNS}
        by_probe[row["metric"]] = entry
    return {"probe_table": nested, "probe_table_skipped": dict(table.attrs.get("skipped", {}))}


def table_from_metrics(metrics: dict) -> pd.DataFrame:
    """The table back from :func:`table_metrics`' dicts (e.g. a run's metrics.json), for its figure."""
    kinds = {metric: kind for kind, names in METRICS.items() for metric in names}

    def number(entry: dict, key: str) -> float:
        return np.nan if entry.get(key) is None else entry[key]

    rows = [
        (label, kinds[metric], features, probe, metric, *(number(entry, k) for k in ("value", "ci_low", "ci_high")))
        + (entry["n_train"], entry["n_test"], number(entry, "chance"), *(number(entry, k) for k in PAIRED_COLUMNS))
        for label, by_features in metrics.get("probe_table", {}).items()
        for features, by_probe in by_features.items()
        for probe, by_metric in by_probe.items()
        for metric, entry in by_metric.items()
    ]
    table = pd.DataFrame(rows, columns=[*COLUMNS, *PAIRED_COLUMNS])
    table.attrs["skipped"] = dict(metrics.get("probe_table_skipped", {}))
    return table


# --------------------------------------------------------------------------------------------------
# Metrics of weighted test sets: a bootstrap resample is the test set with each stay counted as often
# as it was drawn, so all resamples are scored at once from one sort of the scores.


def _resample_weights(n_test: int, n_resamples: int, seed: int, label: str) -> np.ndarray:
    """(n_resamples, n_test) counts: how often each test stay is drawn in each resample. Seeded by
    ``seed`` and the label's name, so a label's interval does not depend on the other labels."""
    rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
    draws = rng.integers(0, n_test, size=(n_resamples, n_test))
    weights = np.zeros((n_resamples, n_test))
    np.add.at(weights, (np.repeat(np.arange(n_resamples), n_test), draws.ravel()), 1.0)
    return weights


def _metric(metric: str, y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """(the metric on the test set, sklearn's; the metric on every resample in ``weights``)."""
    if metric == "auroc":
        return float(roc_auc_score(y, score)), weighted_auroc(y, score, weights)
    if metric == "auprc":
        return float(average_precision_score(y, score)), weighted_average_precision(y, score, weights)
    return float(r2_score(y, score)), weighted_r2(y, score, weights)


def _interval(resampled: np.ndarray) -> tuple[float, float]:
    finite = resampled[np.isfinite(resampled)]
    if not len(finite):
        return float("nan"), float("nan")
    tail = 100.0 * (1.0 - CI_LEVEL) / 2.0
    low, high = np.percentile(finite, [tail, 100.0 - tail])
    return float(low), float(high)


def _tie_groups(y: np.ndarray, score: np.ndarray, weights: np.ndarray, descending: bool):
    """Weighted positives and negatives per distinct score, (resamples, groups), in score order."""
    order = np.argsort(-score if descending else score, kind="mergesort")
    s, positive = score[order], y[order].astype(np.float64)
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
    w = weights[:, order]
    pos = np.add.reduceat(w * positive, starts, axis=1)
    neg = np.add.reduceat(w * (1.0 - positive), starts, axis=1)
    return pos, neg


def weighted_auroc(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of each row of ``weights`` (stay weights; sklearn's ``roc_auc_score`` with
    ``sample_weight``): the weighted share of (positive, negative) pairs ranked right, ties half.
    NaN for a row without positive or negative weight."""
    pos, neg = _tie_groups(y, score, np.atleast_2d(weights), descending=False)
    neg_below = np.cumsum(neg, axis=1) - neg
    total = pos.sum(axis=1) * neg.sum(axis=1)
    pairs = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    return np.divide(pairs, total, out=np.full(len(total), np.nan), where=total > 0)


def weighted_average_precision(y: np.ndarray, score: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Average precision of each row of ``weights`` (sklearn's ``average_precision_score`` with
    ``sample_weight``): sum over thresholds, highest score first, of the recall gained times the
    precision there. NaN for a row without positive or negative weight."""
    pos, neg = _tie_groups(y, score, np.atleast_2d(weights), descending=True)
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
    positives, negatives = tp[:, -1], fp[:, -1]
    gained = (precision * pos).sum(axis=1)  # recall gained at a threshold = its positives / all positives
    valid = (positives > 0) & (negatives > 0)
    return np.divide(gained, positives, out=np.full(len(positives), np.nan), where=valid)


def weighted_r2(y: np.ndarray, prediction: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """R² of each row of ``weights`` (sklearn's ``r2_score`` with ``sample_weight``); NaN for a row
    whose drawn stays all share one value."""
    weights = np.atleast_2d(weights)
    total = weights.sum(axis=1)
    mean = weights @ y / total
    residual = weights @ (y - prediction) ** 2
    spread = (weights * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
    return 1.0 - np.divide(residual, spread, out=np.full(len(total), np.nan), where=spread > 0)
