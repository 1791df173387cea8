"""``python -m vaelab [overrides]`` / ``vaelab [overrides]``: one Hydra-configured training run, or a sweep."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ..errors import VaelabError
from ..evaluation.objectives import TrialFailed, objectives, violated_constraints
from .config import register_configs, validate
from .pipeline import run, summary_line

log = logging.getLogger("vaelab")

CONFIG_DIR = str(Path(__file__).resolve().parents[2] / "conf")

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
            experiment.trainer.threads = 1  # parallel trials beat intra-op threads (docs/design-notes.md §1)
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


def precheck_overrides(argv: list[str]) -> None:
    """Compose the config once before Hydra does, to report a composition error (misspelt key,
    wrong type, unknown group option) in one line with exit code 2 instead of Hydra's multi-line
    report. Sweep overrides (a,b / choice(...)) are left to the sweep."""
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.errors import ConfigCompositionException, OverrideParseException

    args = [a for a in argv if not a.startswith("-")]
    if any(a.startswith("-") and a not in ("-m", "--multirun") for a in argv):
        return  # --cfg, --help, --info ... : Hydra's own business
    try:
        parsed = OverridesParser.create().parse_overrides(args)
    except OverrideParseException:
        return  # Hydra reports its own syntax errors
    plain = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            compose(config_name="config", overrides=plain, return_hydra_config=True)
    except (ConfigCompositionException, OmegaConfBaseException) as exc:
        message = str(exc).split("Config search path")[0]
        lines = [line.strip() for line in message.splitlines() if line.strip() and not line.startswith("To append")]
        cause = exc.__cause__
        if cause is not None:
            lines += [line.strip() for line in str(cause).splitlines()[:1]]
        text = " ".join(dict.fromkeys(lines)).replace("Available options in", "; available in")
        print(f"vaelab: error: config: {text}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    precheck_overrides(sys.argv[1:])
    app()


if __name__ == "__main__":
    main()
