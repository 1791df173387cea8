"""``python -m vaelab [overrides]`` / ``vaelab [overrides]``: one Hydra-configured training run, or a sweep."""

from __future__ import annotations

import dataclasses
import logging
import re
import sys
import warnings
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import VaelabError
from ..evaluation.objectives import TrialFailed, objectives, violated_constraints
from ..io import TRAIN_STATE_FILE
from ..sweeps.launchers import trial_cuda_memory_fraction, trial_threads
from ..training.trainer import TrainingInterrupted
from .config import GROUP_OPTIONS, register_configs, validate
from .pipeline import run, summary_line
from .preemption import Preemption

log = logging.getLogger("vaelab")

EXIT_BAD_INPUT = 2  # a bad config or input: one line names the key, file or dataset
EXIT_DIVERGED = 3  # training diverged (NaN/Inf loss); metrics.json says so

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

# What a config's _target_ may name (Hydra 1.4 runs only whitelisted targets): vaelab's callbacks.
EXECUTION_TARGETS = ("vaelab.*",)

# hydra-ray-launcher 1.2.2 (the ray extra) calls omegaconf's deprecated register_new_resolver on import,
# and Hydra's plugin scan prints that on every run's stderr, where a bad input must get one line.
warnings.filterwarnings("ignore", message=r"register_new_resolver\(\) is deprecated", module=r"hydra_plugins\.hydra_ray_launcher")

register_configs()


@hydra.main(config_path=CONFIG_DIR, config_name="config", execution_whitelist=EXECUTION_TARGETS)
def app(cfg: DictConfig):
    """A single run exits 0 when done, EXIT_BAD_INPUT on bad input, EXIT_DIVERGED on divergence, and
    128 + the signal's number when SIGTERM/SIGINT stopped it (its state written: the same command
    resumes it). A job of vaelab's Optuna sweeper instead returns its objectives, or raises so the
    trial is recorded FAIL and the sweep goes on."""
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN and "vaelab" in str(hydra_cfg.sweeper.get("_target_", ""))
    try:
        experiment = validate(cfg)
        trainer = experiment.trainer
        if trainer.threads is None:  # a sweep trial's share of the cores (docs/design-notes.md §1)
            trainer.threads = trial_threads(hydra_cfg.launcher)
        if trainer.cuda_memory_fraction is None and in_sweep:  # and of the GPU, when trials share one
            trainer.cuda_memory_fraction = trial_cuda_memory_fraction(hydra_cfg.launcher, hydra_cfg.sweeper.n_jobs, trainer.device)
        config = OmegaConf.to_container(cfg, resolve=True)
        if in_sweep:
            pruning = trial_pruning(hydra_cfg, cfg, experiment)
            try:
                result = run(experiment, output_dir, config, on_epoch=pruning)
            except BaseException:
                if pruning is not None:
                    pruning.finish("failed")
                raise
        else:
            with Preemption().installed() as preemption:
                try:
                    result = run(experiment, output_dir, config, stop=preemption.requested)
                except TrainingInterrupted as exc:
                    print(
                        f"vaelab: {preemption.signal_name}: {exc}; the state is in {output_dir / TRAIN_STATE_FILE}: "
                        f"run the same command with hydra.run.dir={output_dir} to resume",
                        file=sys.stderr,
                    )
                    sys.exit(preemption.exit_status)
    except VaelabError as exc:
        if in_sweep:
            raise TrialFailed(str(exc)) from None
        print(f"vaelab: error: {exc}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    log.info("%s -> %s", summary_line(result), output_dir)
    if in_sweep:
        if pruning is not None:
            pruning.finish(result["status"], result.get("best_val_loss"))
        if result["status"] == "pruned":
            import optuna

            raise optuna.TrialPruned(f"epoch {result['pruned_epoch']}: {result['pruned_reason']}")
        broken = violated_constraints(result, experiment.sweep) if result["status"] == "ok" else []
        if broken:
            log.info("constraints broken (%s): objectives get the penalty", ", ".join(broken))
        return objectives(result, experiment.sweep)
    if result["status"] == "diverged":
        print(f"vaelab: {result['error']} (recorded in {output_dir / 'metrics.json'})", file=sys.stderr)
        sys.exit(EXIT_DIVERGED)
    return result


def trial_pruning(hydra_cfg, cfg: DictConfig, experiment):
    """The sweep job's link to its Optuna trial, when ``sweep.pruner`` asks for one (None otherwise,
    and for an in-memory study, which a job cannot reach: the log says so)."""
    if experiment.sweep.pruner == "none":
        return None
    from ..study_storage import storage_url
    from ..sweeps.pruning import TrialPruning  # optuna: imported by pruned sweeps only

    url = storage_url(hydra_cfg.sweeper.get("storage"))
    if url is None:
        log.warning("sweep.pruner=%s needs a persistent study (hydra.sweeper.storage): trials are not pruned", experiment.sweep.pruner)
        return None
    settings = experiment.sweep
    return TrialPruning(
        url, hydra_cfg.sweeper.study_name, int(cfg.sweep_trial), settings.pruner, dict(settings.pruner_options), settings.collapse
    )


def precheck_overrides(argv: list[str]) -> str | None:
    """Compose the config once before Hydra does, to report a composition error (misspelt key,
    wrong type, unknown group option) in one line with exit code 2 instead of Hydra's multi-line
    report. Sweep overrides (a,b / choice(...)) are left to the sweep. Returns the composed
    ``hydra.mode`` (a search preset sets MULTIRUN), None when nothing was composed."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException, OverrideParseException

    args = [a for a in argv if not a.startswith("-")]
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in argv):
        return None  # --cfg, --help, --info ... : Hydra's own business
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except OverrideParseException:
        return None  # Hydra reports its own syntax errors
    plain = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR):
            cfg = compose(config_name="config", overrides=plain, return_hydra_config=True)
        mode = cfg.hydra.get("mode")
        return getattr(mode, "name", mode)
    except (ConfigCompositionException, OmegaConfBaseException) as exc:
        message = str(exc).split("Config search path")[0]
        lines = [line.strip() for line in message.splitlines() if line.strip() and not line.startswith("To append")]
        cause = exc.__cause__
        if cause is not None:
            lines += [line.strip() for line in str(cause).splitlines()[:1]]
        text = " ".join(dict.fromkeys(lines)).replace("Available options in", "; available in")
        hint = key_hint(text, plain)
        print(f"vaelab: error: config: {text}{f' ({hint})' if hint else ''}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


def key_hint(message: str, overrides: list[str]) -> str | None:
    """The next step for an unknown key: the closest valid key (``trainer.epoch`` -> did you mean
    trainer.epochs?), or the group option that has it (``data.path`` needs ``data=h5``)."""
    import difflib

    match = re.search(r"Could not override '([\w.]+)'", message)
    if not match or "." not in match.group(1):
        return None
    key = match.group(1)
    group, _, field = key.partition(".")
    known = known_keys(overrides)
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.8)
    if close:
        return f"did you mean {close[0]}?"
    owners = [name for name, node in GROUP_OPTIONS.get(group, {}).items() if field in {f.name for f in dataclasses.fields(node)}]
    if owners:
        return f"{key} is a setting of {' or '.join(f'{group}={name}' for name in owners)}"
    return None


def known_keys(overrides: list[str]) -> list[str]:
    """Every dotted key of the config the group choices among ``overrides`` compose (their values aside)."""
    from hydra import compose, initialize_config_dir

    choices = [o for o in overrides if "=" in o and "." not in o.split("=", 1)[0] and not o.startswith(("+", "~"))]
    with initialize_config_dir(config_dir=CONFIG_DIR):
        cfg = compose(config_name="config", overrides=choices)

    def walk(node, prefix: str):
        for name, value in node.items_ex(resolve=False) if hasattr(node, "items_ex") else node.items():
            if OmegaConf.is_dict(value) and not value._is_none():  # an unset optional group (logger: null) is a leaf
                yield from walk(value, f"{prefix}{name}.")
            else:
                yield f"{prefix}{name}"

    return list(walk(cfg, ""))


def main() -> None:
    """The console entry point. Hydra 1.4 takes ``hydra.mode`` only from the primary config or the
    command line; a search preset (``hparams_search=collapse``) sets MULTIRUN in its group file, so
    its mode is passed on as ``--multirun`` here: the preset still enters multirun by itself."""
    mode = precheck_overrides(sys.argv[1:])
    if mode == "MULTIRUN" and not {"-m", "--multirun"} & set(sys.argv[1:]):
        sys.argv.append("--multirun")
    app()


if __name__ == "__main__":
    main()
