"""One configured run: cohort -> model -> training -> evaluation -> run directory.

The run directory is the unit of record (docs/architecture.md): metrics.json, history.csv,
train_state.pt, vae_latents.h5, checkpoint.pt and plots/. In-memory and streamed data
(``data=h5 data.stream=true``) go through the same steps: both are a ``Cohort`` whose patients
come as batches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch
from hydra.core.hydra_config import HydraConfig

from ..data.cohort import Cohort
from ..data.latents import write_latents
from ..data.prepare import PreparedData, check_fit, fitted_batch_size, prepare_data, training_split
from ..data.sources import data_source, load_data
from ..data.streaming import Layer2Stream
from ..errors import VaelabError
from ..evaluation.evaluate import check_probe_label, evaluate_run
from ..evaluation.probes import factor_r2, pca_embeddings
from ..io import CHECKPOINT_FILE, HISTORY_FILE, LATENTS_FILE, METRICS_FILE, PLOTS_DIR, TRAIN_STATE_FILE, write_json
from ..losses import VAELoss, build_loss
from ..models import MODELS, VAEBase, build_model
from ..tracking import RunContext, Trackers, open_trackers
from ..training.checkpoint import model_args, save_checkpoint
from ..training.inference import reconstruct
from ..training.trainer import TrainingDiverged, TrainingInterrupted, TrainingPruned, TrainResult, seed_everything, train
from .config import ExperimentConfig
from .recording import RunRecord, write_history

log = logging.getLogger(__name__)

_PREPARED: dict[str, PreparedData] = {}  # data key -> prepared data, oldest first
_PCA_R2: dict[str, dict] = {}  # data key + eval settings -> factor_r2 of the PCA baseline
CACHE_SIZE = 2  # data sets kept per process


def training_fingerprint(experiment: ExperimentConfig) -> str:
    """What decides the training trajectory; a saved state is resumed only under the same one."""
    plain = asdict(experiment)
    for key in ("quiet", "sweep", "eval", "sweep_trial", "logger"):
        plain.pop(key, None)
    for key in ("threads", "resume", "cuda_memory_fraction"):  # where and how fast, not what is trained
        plain["trainer"].pop(key, None)
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()


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
    prepared = prepare_data(data, experiment.data.val_fraction, experiment.seed, data_source(experiment.data))
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


@contextlib.contextmanager
def open_cohort(experiment: ExperimentConfig, record: RunRecord) -> Iterator[Cohort]:
    """The run's patients: prepared in memory (cached per process), or streamed from the Layer-2
    file (``data.stream=true``) and closed when the run ends."""
    if not getattr(experiment.data, "stream", False):
        prepared, cached = prepared_data(experiment)
        record.result["data_cached"] = cached
        yield Cohort.from_prepared(prepared)
        return
    with Layer2Stream(experiment.data.path, experiment.data.memory_mb, experiment.data.vitals) as stream:
        train_idx, val_idx = training_split(stream.n_patients, experiment.data.val_fraction, experiment.seed, str(stream.path))
        check_fit(stream.seq_len, str(stream.path))  # before the pass over the file
        normalizer = stream.fit_normalizer(train_idx)  # one pass over the file: checks every patient too
        record.result.update(memory_mb=experiment.data.memory_mb, chunk_size=stream.chunk_size)
        yield Cohort.from_stream(stream, train_idx, val_idx, normalizer)


def model_and_loss(experiment: ExperimentConfig, n_vitals: int, seq_len: int) -> tuple[dict, VAEBase, VAELoss]:
    """(the checkpoint's model arguments, the seeded model, its loss) for data of this shape."""
    name = experiment.model.name
    config_cls = MODELS[name][0]
    config = config_cls(**{f.name: getattr(experiment.model, f.name) for f in dataclasses.fields(config_cls)})
    seed_everything(experiment.seed)
    model = build_model(name, n_vitals, seq_len, config=config)
    return model_args(name, n_vitals, seq_len, config), model, build_loss(experiment.loss, experiment.schedule)


def default_progress(quiet: bool) -> str:
    """A bar on a terminal; one log line per epoch (vaelab.log and the console log) when stderr is a file or
    a pipe (a batch system's log), where a bar would write carriage-return frames; none when quiet."""
    if quiet:
        return "none"
    return "bar" if sys.stderr.isatty() else "log"


def run(
    experiment: ExperimentConfig,
    output_dir: str | Path,
    config: dict | None = None,
    progress: str | None = None,
    stop: Callable[[], bool] | None = None,
    on_epoch: Callable[[list[dict]], None] | None = None,
) -> dict:
    """Train and evaluate one configured model; write the run directory; return metrics.json's content.

    ``config`` is stored in the checkpoint (default: the experiment's fields); ``progress`` is the
    trainer's (default: ``default_progress``). When ``stop()`` turns true, training writes its
    state after the current batch and TrainingInterrupted propagates (metrics.json says
    ``status: interrupted``); the same call on the same directory resumes.

    A VaelabError about the inputs propagates (after metrics.json records ``status: failed``);
    divergence is a result, not an error: ``status: diverged``. ``on_epoch`` is the trainer's (a
    sweep's pruner); a run it prunes is a result too: ``status: pruned``, with the epoch and reason.

    The trackers of ``experiment.logger`` see every epoch and the run's end, whatever its status;
    a tracker that fails is switched off and named in metrics.json's ``tracking_errors``.
    """
    streamed = bool(getattr(experiment.data, "stream", False))
    record = RunRecord(output_dir, **({"streamed": True} if streamed else {}))
    config = config if config is not None else asdict(experiment)
    trackers = Trackers()
    try:
        trackers = open_trackers(experiment.logger, tracking_context(experiment, record.output_dir, config))
        if experiment.logger is not None:
            record.result["tracking_errors"] = trackers.errors  # the same list: errors of later epochs join it
            record.lap("open_trackers")
        with open_cohort(experiment, record) as cohort:
            hook = trackers.epoch_hook(on_epoch)
            return _run(cohort, experiment, record, config, progress or default_progress(experiment.quiet), stop, hook)
    except VaelabError as exc:
        record.failed(exc)
        raise
    finally:
        finish_tracking(trackers, record)


def tracking_context(experiment: ExperimentConfig, output_dir: Path, config: dict) -> RunContext:
    """The run as the trackers see it: a sweep trial's sweep directory is Hydra's (the run
    directory's parent outside Hydra), the launch directory Hydra's original working directory."""
    launch_dir, sweep_dir = Path.cwd(), None
    if HydraConfig.initialized():
        hydra_cfg = HydraConfig.get()
        launch_dir = Path(hydra_cfg.runtime.cwd)
        if experiment.sweep_trial is not None:
            sweep_dir = launch_dir / hydra_cfg.sweep.dir
    elif experiment.sweep_trial is not None:
        sweep_dir = output_dir.parent
    return RunContext(output_dir, config, launch_dir, sweep_dir, experiment.sweep_trial)


def finish_tracking(trackers: Trackers, record: RunRecord) -> None:
    """Log the run's end; a tracker failing there is added to the metrics.json already written."""
    before = len(trackers.errors)
    trackers.finish(record.result)
    metrics = record.output_dir / METRICS_FILE
    if len(trackers.errors) > before and metrics.exists():
        with contextlib.suppress(VaelabError):  # the run's own outcome stands
            write_json(metrics, record.result)


def _run(cohort: Cohort, experiment: ExperimentConfig, record: RunRecord, config: dict, progress: str, stop, on_epoch) -> dict:
    result, output_dir = record.result, record.output_dir
    check_fit(cohort.seq_len, data_source(experiment.data))
    check_probe_label(cohort, experiment.eval, data_source(experiment.data))  # before training, not after it
    result.update(
        n_patients=cohort.n_patients,
        n_train=len(cohort.train_idx),
        n_val=len(cohort.val_idx),
        seq_len=cohort.seq_len,
        vitals=list(cohort.vitals),
    )
    args, model, loss_fn = model_and_loss(experiment, cohort.n_vitals, cohort.seq_len)
    result["n_parameters"] = int(sum(p.numel() for p in model.parameters()))
    heads = model.has_heads
    train_source, val_source = cohort.patients(cohort.train_idx, heads), cohort.patients(cohort.val_idx, heads)
    record.lap("data_and_model")
    outcome = train_recorded(model, loss_fn, train_source, val_source, experiment, record, progress, stop, on_epoch)
    if outcome is None:
        return result
    record.lap("train")
    figures, mu, logvar = evaluate_run(model, cohort, experiment.eval, lambda: pca_factor_r2(cohort, experiment), loss=experiment.loss)
    result.update(figures)
    record.lap("evaluate")
    write_history(output_dir / HISTORY_FILE, outcome.history)
    write_latents(output_dir / LATENTS_FILE, mu, logvar, cohort.patient_ids)
    save_checkpoint(output_dir / CHECKPOINT_FILE, model, args, cohort.normalizer, config)
    if experiment.eval.plots:
        write_plots(output_dir / PLOTS_DIR, outcome.history, result, model, cohort, experiment)
    if cohort.stream is not None:  # the most patients the stream held, against its bound
        result.update(stream_max_patients=cohort.stream.max_patients, stream_peak_patients=cohort.stream.peak_resident)
    finished = record.finish()
    if not experiment.trainer.keep_state:  # done: only a resume needs the state, the checkpoint stays
        (output_dir / TRAIN_STATE_FILE).unlink(missing_ok=True)
    return finished


def train_recorded(
    model: VAEBase,
    loss_fn: VAELoss,
    train_source,
    val_source,
    experiment: ExperimentConfig,
    record: RunRecord,
    progress: str,
    stop=None,
    on_epoch=None,
) -> TrainResult | None:
    """Train with the run's settings and its resumable state file; the outcome goes into the record.
    None when training diverged or was pruned: then metrics.json and history.csv already say so."""
    batch_size, note = fitted_batch_size(experiment.trainer.batch_size, len(train_source))
    t = dataclasses.replace(experiment.trainer, batch_size=batch_size)
    record.result["batch_size"] = batch_size
    if note:
        record.note(note)
    state_path = record.output_dir / TRAIN_STATE_FILE
    if not t.resume:
        state_path.unlink(missing_ok=True)
    try:
        outcome = train(
            model,
            loss_fn,
            train_source,
            None,
            val_source,
            None,
            t,
            seed=experiment.seed,
            progress=progress,
            state_path=state_path,
            fingerprint=training_fingerprint(experiment),
            stop=stop,
            on_epoch=on_epoch,
        )
    except TrainingInterrupted as exc:
        record.interrupted(exc)
        raise
    except TrainingDiverged as exc:
        record.diverged(exc)
        return None
    except TrainingPruned as exc:
        record.pruned(exc)
        return None
    record.result.update(
        epochs_trained=outcome.epochs_trained,
        best_epoch=outcome.best_epoch,
        best_val_loss=outcome.best_loss,
        stopped_early=outcome.stopped_early,
        train_seconds=outcome.seconds,
        threads=torch.get_num_threads(),
    )
    return outcome


def pca_factor_r2(cohort: Cohort, experiment: ExperimentConfig) -> dict:
    """The factor probe on a PCA of the inputs: a baseline that depends on the data alone, so it is
    computed once per data set and process, not once per trial."""
    seed, n = experiment.eval.probe_seed, experiment.eval.pca_components
    key = f"{_data_key(experiment)}/pca{n}/seed{seed}"
    if key not in _PCA_R2:
        prepared = cohort.in_memory
        pca = pca_embeddings(prepared.x, prepared.masks, n_components=n, seed=seed)
        _PCA_R2[key] = factor_r2(pca, cohort.factors, seed=seed)
    return dict(_PCA_R2[key])


def write_plots(plot_dir: Path, history: list[dict], result: dict, model: VAEBase, cohort: Cohort, experiment: ExperimentConfig) -> None:
    from .. import plots  # matplotlib is imported only by runs that draw (seconds of start-up otherwise)

    plots.plot_training_curves(pd.DataFrame(history), plot_dir / "training_curves.png", recon_unit="MSE (normalized)")
    plots.plot_kl_per_dim(result["kl_per_dim"], plot_dir / "kl_per_dim.png", threshold=experiment.loss.free_bits)
    plots.plot_latent_spread(result["latent_spread_per_dim"], plot_dir / "latent_spread.png")
    if result.get("probe_table"):
        from ..evaluation.probe_table import table_from_metrics

        plots.plot_probe_table(table_from_metrics(result), plot_dir / "probe_table.png")
    rows = cohort.val_idx[: min(experiment.eval.n_plot_patients, len(cohort.val_idx))]
    sample = cohort.sample(rows)
    x = cohort.normalizer.transform(sample.values, sample.masks)
    recon = reconstruct(model, x, sample.masks)[0] if len(rows) else x
    plots.plot_reconstructions(
        sample.values,
        cohort.normalizer.inverse(recon),
        sample.masks,
        sample.vitals,
        sample.patient_ids,
        plot_dir / "reconstructions.png",
        n_patients=len(rows),
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
