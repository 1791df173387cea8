"""``python -m vaelab [overrides]`` / ``vaelab [overrides]``: one Hydra-configured training run."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from .config import register_configs, validate
from .errors import VaelabError
from .run import run, summary_line
from .sweep import TrialFailed, objectives, violated_constraints

log = logging.getLogger("vaelab")

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")

register_configs()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def app(cfg: DictConfig):
    """A single run exits non-zero on bad input (2) or divergence (3); a job of vaelab's Optuna
    sweeper instead returns its objectives, or raises so the trial is recorded FAIL and the sweep goes on."""
    hydra_cfg = HydraConfig.get()
    output_dir = Path(hydra_cfg.runtime.output_dir)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN and "vaelab" in str(hydra_cfg.sweeper.get("_target_", ""))
    try:
        experiment = validate(cfg)
        if experiment.trainer.threads is None and "joblib" in str(hydra_cfg.launcher.get("_target_", "")):
            experiment.trainer.threads = 1  # parallel trials beat intra-op threads (NOTES.md §1)
        result = run(experiment, output_dir, OmegaConf.to_container(cfg, resolve=True))
    except VaelabError as exc:
        if in_sweep:
            raise TrialFailed(str(exc)) from None
        print(f"vaelab: error: {exc}", file=sys.stderr)
        sys.exit(2)
    log.info("%s -> %s", summary_line(result), output_dir)
    if in_sweep:
        broken = violated_constraints(result, experiment.sweep) if result["status"] == "ok" else []
        if broken:
            log.info("constraints broken (%s): objectives get the penalty", ", ".join(broken))
        return objectives(result, experiment.sweep)
    if result["status"] == "diverged":
        print(f"vaelab: {result['error']} (recorded in {output_dir / 'metrics.json'})", file=sys.stderr)
        sys.exit(3)
    return result


def main() -> None:
    app()


if __name__ == "__main__":
    main()
