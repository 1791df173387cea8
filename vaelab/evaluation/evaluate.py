"""The evaluation of a trained model: one pass over the cohort, the same for in-memory and streamed runs.

Collapse metrics on every patient's posterior means; reconstruction figures on the held-out
patients, summed batch by batch (each batch's squared errors and band energies add up, so the
figures are over all observed entries whatever the batch size). Probes that need every patient's
raw inputs at once (the PCA baseline, the summary-statistics probe) run on in-memory cohorts and
are named under ``skipped`` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..data.batches import BatchSource
from ..data.cohort import Cohort
from ..data.prepare import Normalizer
from ..data.sources import check_seed
from ..errors import VaelabError, check, check_finite
from ..losses import LossConfig
from ..models.base import VAEBase
from ..models.multiscale import BRANCHES
from ..training.inference import encode_posterior, posterior_outputs, to_numpy
from . import metrics as M
from .probes import PCA_COMPONENTS, TEST_FRACTION, classification_probe, factor_r2, summary_statistics

log = logging.getLogger(__name__)

# What a streamed cohort cannot compute (every patient's inputs in memory), named in metrics.json.
SKIPPED_WHEN_STREAMED = ["factor_r2", "factor_r2_pca", "probe_auroc", "probe_baseline_auroc", "probe_val_auroc"]


@dataclass
class EvalConfig:
    """Settings of the metrics computed after training (docs/metrics.md); Hydra: ``eval``."""

    mi_batch_size: int = M.MI_BATCH_SIZE  # MI is bounded by log(batch): fixed and reported
    probe_seed: int = 0
    pca_components: int = PCA_COMPONENTS  # the PCA baseline of the factor probe
    probe_label: str = "sepsis"  # the binary label (data's labels/ group) of the downstream probe
    probe_test_fraction: float = TEST_FRACTION
    n_plot_patients: int = 3
    plots: bool = True  # per-run PNGs under plots/; sweeps turn them off (the sweep report plots the sweep)
    probe_table: bool = True  # every label x {linear, trees} x {embedding, summary, both}, bootstrap CIs (seconds on big data)

    def __post_init__(self) -> None:
        check(self.mi_batch_size >= 2, "eval.mi_batch_size", f"must be >= 2, got {self.mi_batch_size}")
        check(self.pca_components >= 1, "eval.pca_components", f"must be >= 1, got {self.pca_components}")
        check_seed(self.probe_seed, "eval.probe_seed")
        check(
            0.0 < self.probe_test_fraction < 1.0,
            "eval.probe_test_fraction",
            f"must be between 0 and 1 (exclusive), got {self.probe_test_fraction}",
        )
        check(self.n_plot_patients >= 1, "eval.n_plot_patients", f"must be >= 1, got {self.n_plot_patients}")
        check_finite(self, "eval")


def check_probe_label(cohort: Cohort, config: EvalConfig, source: str) -> None:
    """Refuse, before training, a probe label (``labels/<eval.probe_label>`` of ``source``) that
    ``downstream_probe`` could not use: it must be numeric, finite and have exactly two classes.
    A cohort without the label, or a streamed one (no probe), passes."""
    label = config.probe_label
    if cohort.in_memory is None or not cohort.labels or label not in cohort.labels:
        return
    y = np.asarray(cohort.labels[label])
    where = f"{source}: dataset 'labels/{label}' (eval.probe_label)"
    if y.dtype.kind not in "biuf":
        raise VaelabError(f"{where} holds {y[0]!r}, not a number; the probe needs a binary 0/1 label")
    bad = np.flatnonzero(~np.isfinite(y))
    if bad.size:
        raise VaelabError(f"{where} has {y[bad[0]]} at entry {bad[0]}; the probe needs a finite binary label")
    classes = np.unique(y)
    if len(classes) != 2:
        raise VaelabError(f"{where} has {len(classes)} distinct value(s) {classes[:5].tolist()}; the probe needs exactly 2")


def evaluate_run(
    model: VAEBase, cohort: Cohort, config: EvalConfig, pca_r2: Callable[[], dict] | None = None, loss: LossConfig | None = None
) -> tuple[dict, np.ndarray, np.ndarray]:
    """(metrics, mu, logvar of every patient). ``pca_r2`` gives the PCA baseline's factor probe
    (the caller caches it: it depends on the data alone); ``loss``, the trained loss's settings,
    adds which dimensions its free-bits floor holds (``free_bits_held_fraction``, ``beta_inactive``)."""
    mu, logvar = encode_posterior(model, cohort.patients())
    out = M.latent_summary(mu, logvar, mi_batch_size=config.mi_batch_size)
    if loss is not None:
        out.update(M.free_bits_summary(mu, logvar, loss.free_bits, loss.free_bits_mode))
    out.update(reconstruction_figures(model, cohort.patients(cohort.val_idx), cohort.normalizer))
    if cohort.in_memory is None:
        out["skipped"] = list(SKIPPED_WHEN_STREAMED)
        return out, mu, logvar
    if cohort.factors:
        out["factor_r2"] = factor_r2(mu, cohort.factors, seed=config.probe_seed)
        if pca_r2 is not None:
            out["factor_r2_pca"] = pca_r2()
    out.update(downstream_probe(mu, cohort, config))
    if config.probe_table and cohort.labels:
        out.update(label_probe_table(mu, cohort, config))
    return out, mu, logvar


def label_probe_table(mu: np.ndarray, cohort: Cohort, config: EvalConfig) -> dict:
    """metrics.json's ``probe_table``: every per-stay label probed on the embedding, the summary
    statistics (in-memory cohorts) and both; a streamed cohort probes the embedding alone."""
    from .probe_table import probe_table, table_metrics

    data = cohort.in_memory.data if cohort.in_memory is not None else None
    baseline = summary_statistics(data.values, data.masks) if data is not None else None
    table = probe_table(mu, cohort.labels, baseline=baseline, seed=config.probe_seed, test_fraction=config.probe_test_fraction)
    return table_metrics(table)


@torch.no_grad()
def reconstruction_figures(model: VAEBase, patients: BatchSource, normalizer: Normalizer) -> dict:
    """``recon_mse``, ``recon_mse_per_vital`` (original units), ``branch_recon_mse`` and the band
    figures (``recon_mse_band``, ``recon_band_r2``, ``branch_recon_mse_band``) of the patients,
    decoded from their posterior means: each batch's masked MSE weighted by its observed entries,
    and its band energies summed."""
    n_obs, sse, branch_sse = 0.0, 0.0, 0.0
    bands, branch_bands = M.BandSums.zero(), [M.BandSums.zero() for _ in BRANCHES]
    vital_obs, vital_sse = np.zeros(len(normalizer.vitals)), np.zeros(len(normalizer.vitals))
    for (x, mask), output in posterior_outputs(model, patients):
        recon, branches = to_numpy(output)
        n, per_vital_n = float(mask.sum(dtype=np.float64)), mask.sum(axis=(0, 1), dtype=np.float64)
        sse += M.masked_mse(recon, x, mask) * n
        bands += M.band_sums(recon, x, mask)
        vital_mse = M.masked_mse_per_vital(normalizer.inverse(recon), normalizer.inverse(x), mask)
        vital_sse += np.where(per_vital_n > 0, vital_mse, 0.0) * per_vital_n
        if branches:
            branch_sse = branch_sse + np.array(M.branch_mse(branches, x, mask)) * n
            branch_bands = [total + M.band_sums(part, x, mask) for total, part in zip(branch_bands, branches)]
        n_obs += n
        vital_obs += per_vital_n
    out = {
        "recon_mse": sse / n_obs,
        "recon_mse_per_vital": {v: (float(s / c) if c > 0 else None) for v, s, c in zip(normalizer.vitals, vital_sse, vital_obs)},
    }
    if bands.n_observed:
        out["recon_mse_band"], out["recon_band_r2"] = bands.mse(), bands.r2()
    if np.ndim(branch_sse):
        out["branch_recon_mse"] = dict(zip(BRANCHES, (branch_sse / n_obs).tolist()))
        if bands.n_observed:
            out["branch_recon_mse_band"] = {name: b.mse() for name, b in zip(BRANCHES, branch_bands)}
    return out


def downstream_probe(mu: np.ndarray, cohort: Cohort, config: EvalConfig) -> dict:
    """Logistic-regression AUROC/AUPRC of ``eval.probe_label`` from the posterior means, beside the
    same probe on per-vital summary statistics (same seeded split): does the latent beat hand-made
    features? Empty when the data carries no such label."""
    label = config.probe_label
    if not cohort.labels or label not in cohort.labels:
        return {}
    data = cohort.in_memory.data
    y = np.asarray(cohort.labels[label], dtype=float)
    kwargs = {"seed": config.probe_seed, "test_fraction": config.probe_test_fraction}
    latent = classification_probe(mu, y, **kwargs)
    baseline = classification_probe(summary_statistics(data.values, data.masks), y, **kwargs)
    out = {
        "probe_label": label,
        "probe_auroc": latent["auroc"],
        "probe_auprc": latent["auprc"],
        "probe_baseline_auroc": baseline["auroc"],
        "probe_baseline_auprc": baseline["auprc"],
        "probe_positive_rate": latent["positive_rate"],
        "probe_n_test": latent["n_test"],
    }
    try:  # what a sweep may select on: the training stays' own validation part (objectives.TEST_STAY_METRICS)
        validation = classification_probe(mu, y, held_out="validation", **kwargs)
        out.update(probe_val_auroc=validation["auroc"], probe_val_auprc=validation["auprc"], probe_n_val=validation["n_test"])
    except VaelabError as error:
        log.warning("no validation probe of %r: %s", label, error)
        out["probe_val_skipped"] = str(error)
    return out
