"""One configured run: data -> model -> training -> evaluation -> run directory.

The run directory is the unit of record (ARCHITECTURE.md): metrics.json, history.csv,
vae_latents.h5, checkpoint.pt and plots/. Every file is written atomically; a run that diverges
or fails still leaves a complete metrics.json saying so.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import metrics as M
from .atomic import atomic_path
from .builder import PreparedData, build_loss, check_fit, prepare_data
from .checkpoint import CHECKPOINT_FILE, save_checkpoint
from .config import MODEL_TYPES, ExperimentConfig, H5DataConfig, PhysioNet2019DataConfig, SyntheticDataConfig
from .data.latents import LATENTS_FILE, write_latents
from .data.layer2 import Layer2Data, read_layer2, vital_columns
from .data.physionet2019 import import_physionet2019
from .data.synthetic import generate_synthetic
from .errors import VaelabError
from .losses import VAELoss
from .models import build_model
from .models.base import VAEBase
from .models.multiscale import BRANCHES
from .probes import classification_probe, factor_r2, pca_embeddings, summary_statistics
from .train import TrainConfig, TrainingDiverged, TrainResult, encode_posterior, reconstruct, seed_everything, train

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.csv"
TRAIN_STATE_FILE = "train_state.pt"


_FIRST_RUN = True


class Stopwatch:
    """Seconds per stage of a run, so a sweep's fixed cost per trial (everything but training) shows."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = now - self._last
        self._last = now


def process_age() -> float | None:
    """Seconds since this process started (Linux /proc), i.e. interpreter + imports + Hydra before run()."""
    try:
        start_ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - start_ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def training_fingerprint(experiment: ExperimentConfig) -> str:
    """What decides the training trajectory; a saved state is resumed only under the same one."""
    plain = asdict(experiment)
    for key in ("quiet", "sweep", "eval", "sweep_trial"):
        plain.pop(key, None)
    for key in ("threads", "resume"):
        plain["trainer"].pop(key, None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


def load_data(cfg, progress: bool = False) -> Layer2Data:
    """The data set a config names, restricted to ``data.vitals`` when given."""
    if isinstance(cfg, SyntheticDataConfig):
        vitals = tuple(cfg.vitals) if cfg.vitals else None
        kwargs = {"vitals": vitals} if vitals else {}
        return generate_synthetic(n_patients=cfg.n_patients, seq_len=cfg.seq_len, seed=cfg.seed, **kwargs)
    if isinstance(cfg, H5DataConfig):
        return select_vitals(read_layer2(cfg.path), cfg.vitals, cfg.path)
    if isinstance(cfg, PhysioNet2019DataConfig):
        path = import_physionet2019(cfg.source, seq_len=cfg.seq_len, min_hours=cfg.min_hours, progress=progress, cache_dir=cfg.cache_dir)
        return select_vitals(read_layer2(path), cfg.vitals, str(path))
    raise VaelabError(f"config data.name: unknown data source {getattr(cfg, 'name', cfg)!r}")


_PREPARED: dict[str, PreparedData] = {}  # data key -> prepared data, oldest first
_PCA_R2: dict[str, dict] = {}  # data key + eval settings -> factor_r2 of the PCA baseline
CACHE_SIZE = 2  # data sets kept per process


def prepared_data(experiment: ExperimentConfig) -> tuple[PreparedData, bool]:
    """(prepared data, whether it came from the cache): loaded, split and normalized once per process.

    The trials of a sweep share one process (basic launcher) or a few reused ones (joblib
    workers), and mostly the same data: preparing it again per trial is pure fixed cost. The key
    holds the data config, the split seed and the source file's size and modification time, so a
    changed file is read again. Cached arrays are made read-only: no run can alter another's inputs.
    """
    key = _data_key(experiment)
    if key in _PREPARED:
        return _PREPARED[key], True
    data = load_data(experiment.data, progress=not experiment.quiet)
    prepared = prepare_data(data, experiment.data.val_fraction, experiment.seed)
    for array in (data.values, data.masks, prepared.x, prepared.masks, prepared.train_idx, prepared.val_idx):
        array.flags.writeable = False
    _PREPARED[key] = prepared
    while len(_PREPARED) > CACHE_SIZE:
        stale = next(iter(_PREPARED))
        del _PREPARED[stale]
        for pca_key in [k for k in _PCA_R2 if k.startswith(stale)]:
            del _PCA_R2[pca_key]
    return prepared, False


def _data_key(experiment: ExperimentConfig) -> str:
    source = getattr(experiment.data, "path", None) or getattr(experiment.data, "source", None)
    stat = None
    if source and Path(source).exists():
        info = Path(source).stat()
        stat = [str(Path(source).resolve()), info.st_size, info.st_mtime_ns]
    plain = {"data": asdict(experiment.data), "seed": experiment.seed, "file": stat}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


def data_source(cfg) -> str:
    """How errors name the data: its file, or the generator."""
    return str(getattr(cfg, "path", None) or getattr(cfg, "source", None) or f"data={cfg.name}")


def select_vitals(data: Layer2Data, vitals: list[str] | None, source: str) -> Layer2Data:
    kept, cols = vital_columns(data.vitals, vitals, source)
    if cols is None:
        return data
    return Layer2Data(data.values[..., cols], data.masks[..., cols], data.patient_ids, kept, data.factors, data.labels)


def write_json(path: Path, payload: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value)}")


def write_history(path: Path, history: list[dict]) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)


def model_args(experiment: ExperimentConfig, data: Layer2Data) -> dict:
    m = experiment.model
    return {
        "model_type": MODEL_TYPES[m.name],
        "input_dim": data.n_vitals,
        "seq_len": data.seq_len,
        "latent_dim": m.latent_dim,
        "base_channels": getattr(m, "base_channels", 64),
        "dropout": getattr(m, "dropout", 0.2),
        "hidden_dim": getattr(m, "hidden_dim", 128),
        "n_layers": getattr(m, "n_layers", 2),
        "latent_groups": getattr(m, "latent_groups", False),
        "pooling": getattr(m, "pooling", "moments"),
        "spectral_head": getattr(m, "spectral_head", False),
        "posterior_bn": getattr(m, "posterior_bn", 0.0),
        "quantile_head": getattr(m, "quantile_head", False),
    }


def model_and_loss(experiment: ExperimentConfig, data) -> tuple[dict, VAEBase, VAELoss]:
    """(build_model's arguments, the seeded model, its loss) for a run on ``data`` (anything with
    n_vitals and seq_len: in-memory or streamed)."""
    args = model_args(experiment, data)
    seed_everything(experiment.seed)
    model = build_model(**args)
    loss = experiment.loss
    loss_fn = build_loss(
        args["model_type"], loss.beta, loss.free_bits, experiment.schedule.warmup_epochs, experiment.schedule.cycle_epochs,
        experiment.schedule.kind, loss.free_bits_mode, loss.branch_weight, loss.spectral_weight, loss.band_power_weight,
        loss.quantile_weight,
    )
    return args, model, loss_fn


def train_recorded(model: VAEBase, loss_fn: VAELoss, train_data: tuple, val_data: tuple, experiment: ExperimentConfig,
                   output_dir: Path, result: dict, started: float) -> TrainResult | None:
    """Train with the run's settings and its resumable state file; the outcome goes into ``result``.

    ``train_data`` / ``val_data``: (x, mask) arrays or (batch source, None). None when training
    diverged: then metrics.json and history.csv already say so.
    """
    t = experiment.trainer
    config = TrainConfig(t.epochs, t.batch_size, t.lr, t.patience, experiment.seed, t.threads,
                         progress=not experiment.quiet, device=t.device)
    state_path = output_dir / TRAIN_STATE_FILE
    if not t.resume:
        state_path.unlink(missing_ok=True)
    try:
        outcome = train(model, loss_fn, *train_data, *val_data, config, state_path=state_path,
                        fingerprint=training_fingerprint(experiment))
    except TrainingDiverged as exc:
        record_divergence(exc, result, output_dir, started)
        return None
    result.update(epochs_trained=outcome.epochs_trained, best_epoch=outcome.best_epoch, stopped_early=outcome.stopped_early,
                  train_seconds=outcome.seconds, threads=torch.get_num_threads())
    return outcome


def record_divergence(exc: TrainingDiverged, result: dict, output_dir: Path, started: float) -> dict:
    """A diverged run is a result: metrics.json says so, history.csv keeps the epochs before."""
    result.update(status="diverged", error=str(exc), diverged_epoch=exc.epoch, epochs_trained=len(exc.history),
                  train_seconds=time.perf_counter() - started)
    write_history(output_dir / HISTORY_FILE, exc.history)
    write_json(output_dir / METRICS_FILE, result)
    log.warning("run diverged: %s", exc)
    return result


def evaluate_run(model, prepared: PreparedData, experiment: ExperimentConfig) -> dict:
    """Collapse metrics on every patient's posterior; reconstruction on held-out patients."""
    data, va = prepared.data, prepared.val_idx
    x_va, m_va = prepared.x[va], prepared.masks[va]
    mu, logvar = encode_posterior(model, prepared.x, prepared.masks)
    out = M.latent_summary(mu, logvar, mi_batch_size=experiment.eval.mi_batch_size)
    recon, branches = reconstruct(model, x_va, m_va)
    out["recon_mse"] = M.masked_mse(recon, x_va, m_va)
    per_vital = M.masked_mse_per_vital(prepared.normalizer.inverse(recon), data.values[va], data.masks[va])
    out["recon_mse_per_vital"] = {v: (None if np.isnan(e) else float(e)) for v, e in zip(data.vitals, per_vital)}
    bands = M.band_sums(recon, x_va, m_va)
    out["recon_mse_band"], out["recon_band_r2"] = bands.mse(), bands.r2()
    if branches:
        out["branch_recon_mse"] = dict(zip(BRANCHES, M.branch_mse(branches, x_va, m_va)))
        out["branch_recon_mse_band"] = {name: M.band_mse(part, x_va, m_va) for name, part in zip(BRANCHES, branches)}
    if data.factors:
        seed = experiment.eval.probe_seed
        out["factor_r2"] = factor_r2(mu, data.factors, seed=seed)
        out["factor_r2_pca"] = pca_factor_r2(prepared, experiment)
    out.update(downstream_probe(mu, data, experiment))
    return out, mu, logvar, recon


def pca_factor_r2(prepared: PreparedData, experiment: ExperimentConfig) -> dict:
    """The factor probe on a PCA of the inputs: a baseline that depends on the data alone, so it is
    computed once per data set and process, not once per trial."""
    seed, n = experiment.eval.probe_seed, experiment.eval.pca_components
    key = f"{_data_key(experiment)}/pca{n}/seed{seed}"
    if key not in _PCA_R2:
        pca = pca_embeddings(prepared.x, prepared.masks, n_components=n, seed=seed)
        _PCA_R2[key] = factor_r2(pca, prepared.data.factors, seed=seed)
    return dict(_PCA_R2[key])


def downstream_probe(mu: np.ndarray, data: Layer2Data, experiment: ExperimentConfig) -> dict:
    """Logistic-regression AUROC/AUPRC of ``eval.probe_label`` from the posterior means, beside the
    same probe on per-vital summary statistics (same seeded split): does the latent beat hand-made
    features? Empty when the data carries no such label."""
    label = experiment.eval.probe_label
    if not data.labels or label not in data.labels:
        return {}
    y = np.asarray(data.labels[label], dtype=float)
    kwargs = {"seed": experiment.eval.probe_seed, "test_fraction": experiment.eval.probe_test_fraction}
    latent = classification_probe(mu, y, **kwargs)
    baseline = classification_probe(summary_statistics(data.values, data.masks), y, **kwargs)
    return {
        "probe_label": label,
        "probe_auroc": latent["auroc"],
        "probe_auprc": latent["auprc"],
        "probe_baseline_auroc": baseline["auroc"],
        "probe_baseline_auprc": baseline["auprc"],
        "probe_positive_rate": latent["positive_rate"],
        "probe_n_test": latent["n_test"],
    }


def run(experiment: ExperimentConfig, output_dir: str | Path, config: dict | None = None) -> dict:
    """Train and evaluate one configured model; write the run directory; return metrics.json's content.

    A VaelabError about the inputs propagates (after metrics.json records ``status: failed``);
    divergence is a result, not an error: ``status: diverged``.
    """
    if getattr(experiment.data, "stream", False):  # data=h5 data.stream=true: a file larger than memory, read in chunks
        from .stream_run import run_streamed  # imported here: stream_run builds on this module

        return run_streamed(experiment, output_dir, config)
    output_dir = Path(output_dir)
    config = config if config is not None else asdict(experiment)
    result: dict = {"status": "failed", "output_dir": str(output_dir)}
    started = time.perf_counter()
    clock = Stopwatch()
    global _FIRST_RUN
    if _FIRST_RUN:  # process start-up (interpreter, imports, Hydra) is paid once per process, not per trial
        result["startup_seconds"] = process_age()
        _FIRST_RUN = False
    try:
        prepared, cached = prepared_data(experiment)
        data = prepared.data
        result["data_cached"] = cached
        check_fit(prepared, experiment.trainer.batch_size, data_source(experiment.data))
        result.update(n_patients=data.n_patients, n_train=len(prepared.train_idx), n_val=len(prepared.val_idx),
                      seq_len=data.seq_len, vitals=list(data.vitals))
        args, model, loss_fn = model_and_loss(experiment, data)
        result["n_parameters"] = int(sum(p.numel() for p in model.parameters()))
        clock.lap("data_and_model")
        tr, va = prepared.train_idx, prepared.val_idx
        outcome = train_recorded(model, loss_fn, (prepared.x[tr], prepared.masks[tr]), (prepared.x[va], prepared.masks[va]),
                                 experiment, output_dir, result, started)
        if outcome is None:
            return result
        clock.lap("train")
        figures, mu, logvar, recon = evaluate_run(model, prepared, experiment)
        result.update(figures)
        clock.lap("evaluate")
        result["status"] = "ok"
        write_history(output_dir / HISTORY_FILE, outcome.history)
        write_latents(output_dir / LATENTS_FILE, mu, logvar, data.patient_ids)
        save_checkpoint(output_dir / CHECKPOINT_FILE, model, args, prepared.normalizer, config)
        if experiment.eval.plots:
            write_plots(output_dir / "plots", outcome.history, result, prepared, recon, experiment)
        return finish(result, clock, started, output_dir)
    except VaelabError as exc:
        record_failure(exc, result, output_dir)
        raise


def finish(result: dict, clock: Stopwatch, started: float, output_dir: Path) -> dict:
    """Close the run's clock and write metrics.json: the last file, so its presence means done."""
    clock.lap("write")
    result["seconds"] = time.perf_counter() - started
    result["timings"] = clock.laps
    result["fixed_seconds"] = result["seconds"] - clock.laps["train"]  # everything a trial costs besides training
    write_json(output_dir / METRICS_FILE, result)
    return result


def record_failure(exc: VaelabError, result: dict, output_dir: Path) -> None:
    """metrics.json says ``status: failed`` and why, where the output directory allows it."""
    result["error"] = str(exc)
    try:
        write_json(output_dir / METRICS_FILE, result)
    except VaelabError:
        pass  # the output directory itself is the problem; the error says so


def write_plots(plot_dir: Path, history: list[dict], result: dict, prepared: PreparedData, recon, experiment: ExperimentConfig) -> None:
    from . import plots  # matplotlib is imported only by runs that draw (seconds of start-up otherwise)

    history_df = pd.DataFrame(history)
    plots.plot_training_curves(history_df, plot_dir / "training_curves.png", recon_unit="MSE (normalized)")
    plots.plot_kl_per_dim(result["kl_per_dim"], plot_dir / "kl_per_dim.png", threshold=experiment.loss.free_bits)
    plots.plot_latent_spread(result["latent_spread_per_dim"], plot_dir / "latent_spread.png")
    va, data = prepared.val_idx, prepared.data
    n = min(experiment.eval.n_plot_patients, len(va))
    plots.plot_reconstructions(
        data.values[va][:n], prepared.normalizer.inverse(recon[:n]), data.masks[va][:n], data.vitals,
        data.patient_ids[va][:n], plot_dir / "reconstructions.png", n_patients=n,
    )


def summary_line(result: dict) -> str:
    """One line for the console and the sweep log."""
    if result["status"] != "ok":
        return f"status={result['status']} {result.get('error', '')}"
    return (
        f"status=ok kl={result['kl']:.2f} nats active_units={result['active_units']}/{result['latent_dim']} "
        f"latent_spread={result['latent_spread']:.3f} mi={result['mi']:.2f} recon_mse={result['recon_mse']:.4f} "
        f"epochs={result['epochs_trained']} train_seconds={result['train_seconds']:.1f}"
    )
