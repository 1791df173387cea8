"""Probes: how much a patient embedding says about known factors and outcomes, plus baselines.

All functions take plain numpy arrays and return numpy arrays or JSON-serialisable dicts.
Every probe splits *patients* (rows) once with a seeded split, fits on the training part only
(scalers included) and reports a held-out score. The table of every label with both probes, three
feature sets and bootstrap intervals (``probe_table``) is built from these parts in probe_table.py.
"""

from __future__ import annotations

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.metrics import average_precision_score, r2_score, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from ..errors import VaelabError

# Column blocks of ``summary_statistics``, in order; each block has one column per vital.
SUMMARY_STATISTICS = ("mean", "std", "min", "max", "last", "fraction_observed")

# Grid for the kernel probe. Gamma is in units of 1 / embedding dimension, so that with unit
# variance per dimension gamma * |x - x'|^2 is of order the listed values; alpha is relative to a
# standardized factor.
_KERNEL_GAMMAS = (0.03, 0.1, 0.3, 1.0, 3.0)
_KERNEL_ALPHAS = (1e-2, 1e-1, 1.0)
_RIDGE_ALPHAS = np.logspace(-3, 3, 13)


TEST_FRACTION = 0.3  # patients held out by every probe
PCA_COMPONENTS = 8  # the PCA baseline's components


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < test_fraction < 1.0:
        raise VaelabError(f"test_fraction must be between 0 and 1 (exclusive), got {test_fraction}")


def _check_features(features: np.ndarray, name: str) -> np.ndarray:
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise VaelabError(f"{name} must have shape (patients, features), got {features.shape}")
    if not np.all(np.isfinite(features)):
        raise VaelabError(f"{name} contain NaN or infinite values")
    return features


def seeded_split(n_patients: int, seed: int, test_fraction: float = TEST_FRACTION, stratify=None) -> tuple[np.ndarray, np.ndarray]:
    """The probes' one patient split: (train rows, test rows) of ``range(n_patients)``.

    sklearn ``train_test_split`` with ``random_state=seed`` and ``test_size=test_fraction``, stratified
    on ``stratify`` (a binary label) when given, so that both parts keep its positive rate. The same
    seed and rows give the same split in every probe (the factor probes, ``classification_probe`` and
    the probe table). Raises sklearn's ValueError when the split is impossible (too few rows or
    members of a class); callers turn it into their own message.
    """
    return train_test_split(np.arange(n_patients), test_size=test_fraction, random_state=seed, stratify=stratify)


def linear_classifier():
    """The linear probe of a binary label: logistic regression on standardized features (scaler
    fitted with it, on the training part), balanced class weights since ICU outcomes are rare."""
    return make_pipeline(StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000))


def linear_regressor():
    """The linear probe of a continuous target: ridge on standardized features, alpha chosen by
    efficient leave-one-out CV over a fixed grid (RidgeCV)."""
    return make_pipeline(StandardScaler(), RidgeCV(alphas=_RIDGE_ALPHAS))


def _factor_split(
    embeddings: np.ndarray, factors: dict[str, np.ndarray], seed: int, test_fraction: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Validate inputs; return (embeddings, train rows, test rows, factors as float arrays)."""
    _check_fraction(test_fraction)
    embeddings = _check_features(embeddings, "embeddings")
    n_patients = embeddings.shape[0]
    checked = {}
    for name, values in factors.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (n_patients,):
            raise VaelabError(f"factor {name!r} has shape {values.shape}; expected ({n_patients},), one value per patient")
        if not np.all(np.isfinite(values)):
            raise VaelabError(f"factor {name!r} contains NaN or infinite values")
        checked[name] = values
    train, test = seeded_split(n_patients, seed, test_fraction)
    if len(train) < 6 or len(test) < 2:
        raise VaelabError(f"too few patients ({n_patients}) for a factor probe with test_fraction={test_fraction}")
    return embeddings, train, test, checked


def factor_r2(
    embeddings: np.ndarray, factors: dict[str, np.ndarray], seed: int = 0, test_fraction: float = TEST_FRACTION
) -> dict[str, float]:
    """Held-out R^2 of each true generating factor predicted from the embeddings (posterior means).

    The read-out must be nonlinear: a daily-rhythm amplitude with a random phase sits on a circle
    in a good code, so no linear map recovers it. We use RBF kernel ridge regression (a smooth,
    rotation-invariant regressor, unlike trees, which fail on codes whose axes are not aligned with
    the factors), with alpha and gamma chosen per factor by 3-fold cross-validation on the training
    patients.

    Scaling is also chosen by that cross-validation: the embeddings are first centred and divided
    by ONE common scale (the root-mean variance over dimensions), then either used as they are or
    standardized per dimension. Per-dimension standardization alone would blow the near-constant
    means of collapsed dimensions up to unit-variance noise and drown the kernel; a common scale
    alone would underweight an informative dimension with a small spread. All scalers are fitted
    on the training part; each factor is standardized with its training mean and std (kernel
    ridge has no intercept). The same seeded patient split is used for all factors.

    An isotropic kernel still loses R^2 when many active dimensions are irrelevant to a factor;
    compare embeddings of similar size (see ``pca_embeddings``). Returns R^2 on the test patients
    (sklearn ``r2_score``; negative means worse than predicting the mean); constant embeddings
    give ~0 or below.
    """
    embeddings, train, test, factors = _factor_split(embeddings, factors, seed, test_fraction)
    x_train, x_test = embeddings[train], embeddings[test]
    center = x_train.mean(axis=0)
    common_scale = float(np.sqrt(np.mean(x_train.var(axis=0))))
    if common_scale <= 0.0:
        common_scale = 1.0
    x_train = (x_train - center) / common_scale
    x_test = (x_test - center) / common_scale
    dim_scale = x_train.std(axis=0)
    dim_scale[dim_scale == 0] = 1.0
    scalings = [(x_train / dim_scale, x_test / dim_scale), (x_train, x_test)]  # standardized | as is

    names = list(factors)
    y = np.stack([factors[n][train] for n in names], axis=1)
    y_mean, y_std = y.mean(axis=0), y.std(axis=0)
    y_std[y_std == 0] = 1.0
    y = (y - y_mean) / y_std
    gammas = [g / embeddings.shape[1] for g in _KERNEL_GAMMAS]
    with threadpool_limits(limits=1, user_api="blas"):  # small matrices: threads only add overhead
        errors = _kernel_ridge_cv_errors(scalings, y, gammas, _KERNEL_ALPHAS)
        scores = {}
        for j, name in enumerate(names):
            s_best, g_best, a_best = np.unravel_index(np.argmin(errors[..., j]), errors.shape[:3])
            xs_train, xs_test = scalings[s_best]
            k_train = _rbf(xs_train, xs_train, gammas[g_best])
            coef = np.linalg.solve(k_train + _KERNEL_ALPHAS[a_best] * np.eye(len(k_train)), y[:, j])
            prediction = _rbf(xs_test, xs_train, gammas[g_best]) @ coef * y_std[j] + y_mean[j]
            scores[name] = float(r2_score(factors[name][test], prediction))
    return scores


def _rbf(a: np.ndarray, b: np.ndarray, gamma: float) -> np.ndarray:
    sq = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-gamma * np.maximum(sq, 0.0))


def _kernel_ridge_cv_errors(scalings, y: np.ndarray, gammas, alphas, folds: int = 3) -> np.ndarray:
    """3-fold CV squared error of RBF kernel ridge for every (scaling, gamma, alpha, factor).

    One eigendecomposition per fold and gamma serves every alpha and every factor at once
    (K + alpha I)^-1 = Q diag(1 / (lambda + alpha)) Q^T, which is what keeps the probe cheap
    enough to run after every training run. Folds are contiguous, as GridSearchCV's default.
    """
    n = len(y)
    errors = np.zeros((len(scalings), len(gammas), len(alphas), y.shape[1]))
    bounds = np.linspace(0, n, folds + 1).astype(int)
    for s, (x, _) in enumerate(scalings):
        for g, gamma in enumerate(gammas):
            kernel = _rbf(x, x, gamma)
            for lo, hi in zip(bounds[:-1], bounds[1:]):
                val = np.arange(lo, hi)
                fit = np.setdiff1d(np.arange(n), val)
                lam, q = np.linalg.eigh(kernel[np.ix_(fit, fit)])
                qty = q.T @ y[fit]
                k_val = kernel[np.ix_(val, fit)] @ q
                for a, alpha in enumerate(alphas):
                    prediction = k_val @ (qty / (lam + alpha)[:, None])
                    errors[s, g, a] += ((prediction - y[val]) ** 2).sum(axis=0)
    return errors


def linear_factor_r2(
    embeddings: np.ndarray, factors: dict[str, np.ndarray], seed: int = 0, test_fraction: float = TEST_FRACTION
) -> dict[str, float]:
    """Held-out R^2 of each factor from a linear read-out (standardized embeddings, RidgeCV).

    The cheap comparison for ``factor_r2``: a factor that is high there but low here is encoded
    nonlinearly (for example on a circle). Same seeded patient split as ``factor_r2``.
    """
    embeddings, train, test, factors = _factor_split(embeddings, factors, seed, test_fraction)
    scores = {}
    for name, values in factors.items():
        model = linear_regressor()
        model.fit(embeddings[train], values[train])
        scores[name] = float(r2_score(values[test], model.predict(embeddings[test])))
    return scores


def pca_embeddings(x: np.ndarray, masks: np.ndarray, n_components: int = PCA_COMPONENTS, seed: int = 0) -> np.ndarray:
    """PCA baseline embedding, shape (N, n_components): the comparison every VAE result needs.

    Each patient's normalized window x (N, T, V; 0 where unobserved) is flattened and concatenated
    with its flattened mask, so that the missingness pattern counts as it does for the VAE;
    sklearn PCA (seeded) gives the scores. ``n_components`` is clipped to min(N, features).
    A VAE that loses to PCA on a time scale does not capture that scale.
    """
    x = np.asarray(x, dtype=np.float64)
    observed = np.asarray(masks) > 0
    if x.ndim != 3 or x.shape != observed.shape:
        raise VaelabError(f"x and masks must both have shape (patients, hours, vitals), got {x.shape} and {observed.shape}")
    if n_components < 1:
        raise VaelabError(f"n_components must be at least 1, got {n_components}")
    n_patients = x.shape[0]
    # Unobserved entries should already be 0; np.where also keeps a stray NaN out of the fit.
    flat = np.concatenate(
        [np.where(observed, x, 0.0).reshape(n_patients, -1), observed.reshape(n_patients, -1).astype(np.float64)],
        axis=1,
    )
    n_components = min(n_components, n_patients, flat.shape[1])
    return PCA(n_components=n_components, random_state=seed).fit_transform(flat)


def summary_statistics(values: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Hand-made baseline features per patient, shape (N, 6 * V).

    Per vital, on observed entries only (values in physiological units, NaN where unobserved):
    mean, std (ddof=0), min, max, last observed value, fraction of hours observed. Columns are in
    blocks of V, in the order of ``SUMMARY_STATISTICS`` (all means, then all stds, ...). A vital
    never observed for a patient gets 0 for every statistic; the output has no NaN.
    """
    values = np.asarray(values, dtype=np.float64)
    observed = np.asarray(masks) > 0
    if values.ndim != 3 or values.shape != observed.shape:
        raise VaelabError(f"values and masks must both have shape (patients, hours, vitals), got {values.shape} and {observed.shape}")
    if not np.all(np.isfinite(values[observed])):
        raise VaelabError("values are NaN or infinite at entries the mask marks as observed")
    n_hours = values.shape[1]
    count = observed.sum(axis=1)  # (N, V)
    seen = count > 0
    safe_count = np.maximum(count, 1)
    filled = np.where(observed, values, 0.0)

    mean = filled.sum(axis=1) / safe_count
    std = np.sqrt(np.where(observed, (filled - mean[:, None, :]) ** 2, 0.0).sum(axis=1) / safe_count)
    minimum = np.where(observed, values, np.inf).min(axis=1)
    maximum = np.where(observed, values, -np.inf).max(axis=1)
    last_hour = n_hours - 1 - np.argmax(observed[:, ::-1, :], axis=1)  # (N, V)
    last = np.take_along_axis(filled, last_hour[:, None, :], axis=1)[:, 0, :]
    fraction = count / n_hours

    blocks = [mean, std, minimum, maximum, last, fraction]
    return np.concatenate([np.where(seen, block, 0.0) for block in blocks], axis=1)


HELD_OUT_PARTS = ("test", "validation")


def classification_probe(
    features: np.ndarray, labels: np.ndarray, seed: int = 0, test_fraction: float = TEST_FRACTION, held_out: str = "test"
) -> dict:
    """Held-out AUROC / AUPRC of a binary outcome from patient features.

    Logistic regression on standardized features (scaler fitted on the training part) with
    balanced class weights, since ICU outcomes are rare; stratified seeded patient split so that
    both parts keep the positive rate. The positive class is the larger of the two label values.
    ``held_out="validation"`` scores a second split of the *training* patients (same seed and
    fraction) instead of the test patients, which it never reads: the figure a model or
    hyperparameter selection may use, so the test patients stay unseen until the final table.
    Returns ``auroc``, ``auprc`` (average precision), ``n_train``, ``n_test`` (the held-out
    part's size) and ``positive_rate`` (over all patients; the AUPRC of a random score).
    """
    if held_out not in HELD_OUT_PARTS:
        raise VaelabError(f"held_out must be one of {', '.join(HELD_OUT_PARTS)}, got {held_out!r}")
    _check_fraction(test_fraction)
    features = _check_features(features, "features")
    labels = np.asarray(labels)
    if labels.shape != (features.shape[0],):
        raise VaelabError(f"labels have shape {labels.shape}; expected ({features.shape[0]},), one label per patient")
    classes = np.unique(labels)
    if len(classes) != 2:
        raise VaelabError(
            f"classification_probe needs a binary label with both classes present; got {len(classes)} "
            f"distinct value(s): {classes[:5].tolist()}"
        )
    y = (labels == classes[1]).astype(int)
    try:
        train, test = seeded_split(len(y), seed, test_fraction, stratify=y)
    except ValueError as error:
        raise VaelabError(f"cannot make a stratified split of {len(y)} patients ({int(y.sum())} positive): {error}") from error
    if held_out == "validation":
        try:
            fit, validation = seeded_split(len(train), seed, test_fraction, stratify=y[train])
        except ValueError as error:
            raise VaelabError(
                f"cannot split a validation part off the {len(train)} training patients ({int(y[train].sum())} positive): {error}"
            ) from error
        train, test = train[fit], train[validation]
    if len(np.unique(y[train])) < 2 or len(np.unique(y[test])) < 2:
        raise VaelabError(f"too few positives or negatives ({int(y.sum())} of {len(y)}) to have both classes in train and {held_out}")

    model = linear_classifier()
    model.fit(features[train], y[train])
    score = model.predict_proba(features[test])[:, 1]
    return {
        "auroc": float(roc_auc_score(y[test], score)),
        "auprc": float(average_precision_score(y[test], score)),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "positive_rate": float(y.mean()),
    }
