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

log = logging.getLogger("vaelab")

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")

register_configs()


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def app(cfg: DictConfig):
    output_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        experiment = validate(cfg)
        result = run(experiment, output_dir, OmegaConf.to_container(cfg, resolve=True))
    except VaelabError as exc:
        print(f"vaelab: error: {exc}", file=sys.stderr)
        sys.exit(2)
    log.info("%s -> %s", summary_line(result), output_dir)
    if result["status"] == "diverged" and HydraConfig.get().mode == RunMode.RUN:
        print(f"vaelab: {result['error']} (recorded in {output_dir / 'metrics.json'})", file=sys.stderr)
        sys.exit(3)
    return result


def main() -> None:
    app()


if __name__ == "__main__":
    main()
