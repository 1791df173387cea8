"""One configured run on a Layer-2 file read in chunks (``data=h5 data.stream=true``).

For files larger than memory: the run never holds more patients than ``data.memory_mb`` allows
(``data.streaming``). It writes the run directory ``run.run`` writes -- metrics.json, history.csv,
train_state.pt (resumable), checkpoint.pt, vae_latents.h5 for every patient, plots/ -- with two
differences. Validation streams the whole validation split every epoch (file order), so early
stopping sees exactly the figures the in-memory run would, at the cost of a second read of the
file per epoch. The evaluations that need every patient's inputs in memory are skipped and named
in metrics.json under ``skipped``, beside ``"streamed": true``: the factor probe and its PCA
baseline and the downstream probe. The frequency-band reconstruction figures are summed batch by batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from . import metrics as M
from .builder import PreparedData, check_fit
from .checkpoint import CHECKPOINT_FILE, save_checkpoint
from .config import ExperimentConfig
from .data.latents import LATENTS_FILE, write_latents
from .data.layer2 import Layer2Data
from .data.streaming import Layer2Stream, StreamedPatients
from .data.tensors import Normalizer, split_patients
from .errors import VaelabError
from .models.base import VAEBase
from .models.multiscale import BRANCHES
from .run import HISTORY_FILE, Stopwatch, finish, model_and_loss, record_failure, train_recorded, write_history, write_plots
from .train import encode_posterior, reconstruct

log = logging.getLogger(__name__)

EVAL_BATCH_SIZE = 256  # as encode_posterior / evaluate
SKIPPED = ["factor_r2", "factor_r2_pca", "probe_auroc", "probe_baseline_auroc"]


def run_streamed(experiment: ExperimentConfig, output_dir: str | Path, config: dict | None = None) -> dict:
    """``run.run`` for ``data.stream=true``: same arguments, same outputs (less ``SKIPPED``), same errors."""
    output_dir = Path(output_dir)
    config = config if config is not None else asdict(experiment)
    result: dict = {"status": "failed", "output_dir": str(output_dir), "streamed": True}
    try:
        with Layer2Stream(experiment.data.path, experiment.data.memory_mb, experiment.data.vitals) as stream:
            return _run(stream, experiment, output_dir, config, result, time.perf_counter())
    except VaelabError as exc:
        record_failure(exc, result, output_dir)
        raise


def _run(stream: Layer2Stream, experiment: ExperimentConfig, output_dir: Path, config: dict, result: dict, started: float) -> dict:
    t = experiment.trainer
    clock = Stopwatch()
    train_idx, val_idx = split_patients(stream.n_patients, experiment.data.val_fraction, experiment.seed)
    check_fit(SimpleNamespace(data=stream, train_idx=train_idx), t.batch_size, str(stream.path))  # reads only these
    normalizer = stream.fit_normalizer(train_idx)
    train_source, val_source = stream.patients(train_idx, normalizer), stream.patients(val_idx, normalizer)
    result.update(n_patients=stream.n_patients, n_train=len(train_idx), n_val=len(val_idx), seq_len=stream.seq_len,
                  vitals=list(stream.vitals), memory_mb=experiment.data.memory_mb, chunk_size=stream.chunk_size)
    args, model, loss_fn = model_and_loss(experiment, stream)
    result["n_parameters"] = int(sum(p.numel() for p in model.parameters()))
    clock.lap("data_and_model")  # the streaming pass over the file (checks, normalization) included
    outcome = train_recorded(model, loss_fn, (train_source, None), (val_source, None), experiment, output_dir, result, started)
    if outcome is None:
        return result
    clock.lap("train")
    mu, logvar = encode_posterior(model, stream.patients(np.arange(stream.n_patients), normalizer))
    result.update(M.latent_summary(mu, logvar, mi_batch_size=experiment.eval.mi_batch_size))
    result.update(streamed_reconstruction(model, val_source))
    result.update(skipped=SKIPPED, stream_max_patients=stream.max_patients, stream_peak_patients=stream.peak_resident)
    clock.lap("evaluate")
    result["status"] = "ok"
    write_history(output_dir / HISTORY_FILE, outcome.history)
    write_latents(output_dir / LATENTS_FILE, mu, logvar, stream.patient_ids)
    save_checkpoint(output_dir / CHECKPOINT_FILE, model, args, normalizer, config)
    if experiment.eval.plots:
        n_plot = min(experiment.eval.n_plot_patients, len(val_idx))
        sample = plot_sample(stream, val_idx[:n_plot], normalizer)
        recon = reconstruct(model, sample.x, sample.masks)[0] if n_plot else sample.x
        write_plots(output_dir / "plots", outcome.history, result, sample, recon, experiment)
    return finish(result, clock, started, output_dir)


@torch.no_grad()
def streamed_reconstruction(model: VAEBase, patients: StreamedPatients) -> dict:
    """``recon_mse``, ``recon_mse_per_vital`` (original units), ``branch_recon_mse`` and the band
    figures (``recon_mse_band``, ``recon_band_r2``, ``branch_recon_mse_band``) of the patients, as
    ``run.evaluate_run`` computes them, batch by batch: each batch's masked MSE (metrics.py) weighted by
    its observed entries, and its band energies summed, so the results are over all observed entries."""
    norm = patients.normalizer
    n_obs, sse, branch_sse = 0.0, 0.0, 0.0
    bands, branch_bands = M.BandSums.zero(), [M.BandSums.zero() for _ in BRANCHES]
    vital_obs, vital_sse = np.zeros(len(norm.vitals)), np.zeros(len(norm.vitals))
    for x, mask in patients.batches(EVAL_BATCH_SIZE):
        recon, branches = reconstruct(model, x, mask, batch_size=len(x))
        n, per_vital_n = float(mask.sum(dtype=np.float64)), mask.sum(axis=(0, 1), dtype=np.float64)
        sse += M.masked_mse(recon, x, mask) * n
        bands += M.band_sums(recon, x, mask)
        vital_mse = M.masked_mse_per_vital(norm.inverse(recon), norm.inverse(x), mask)
        vital_sse += np.where(per_vital_n > 0, vital_mse, 0.0) * per_vital_n
        if branches:
            branch_sse = branch_sse + np.array(M.branch_mse(branches, x, mask)) * n
            branch_bands = [total + M.band_sums(part, x, mask) for total, part in zip(branch_bands, branches)]
        n_obs += n
        vital_obs += per_vital_n
    out = {
        "recon_mse": sse / n_obs,
        "recon_mse_per_vital": {v: (float(s / c) if c > 0 else None) for v, s, c in zip(norm.vitals, vital_sse, vital_obs)},
    }
    if bands.n_observed:
        out["recon_mse_band"], out["recon_band_r2"] = bands.mse(), bands.r2()
    if np.ndim(branch_sse):
        out["branch_recon_mse"] = dict(zip(BRANCHES, (branch_sse / n_obs).tolist()))
        if bands.n_observed:
            out["branch_recon_mse_band"] = {name: b.mse() for name, b in zip(BRANCHES, branch_bands)}
    return out


def plot_sample(stream: Layer2Stream, rows: np.ndarray, normalizer: Normalizer) -> PreparedData:
    """A few patients read from the stream as a PreparedData (all of them 'validation'), which is
    what ``run.write_plots`` draws its reconstruction grid from."""
    parts = [stream.read(int(i), int(i) + 1) for i in rows]
    values = np.concatenate([p[0] for p in parts]) if parts else np.empty((0, stream.seq_len, stream.n_vitals), np.float32)
    observed = np.concatenate([p[1] for p in parts]) if parts else np.zeros(values.shape, bool)
    masks = observed.astype(np.float32)
    data = Layer2Data(np.where(observed, values, np.nan).astype(np.float32), masks, stream.patient_ids[rows], stream.vitals)
    return PreparedData(data, normalizer, normalizer.transform(values, observed), masks, np.array([], int), np.arange(len(rows)))
