"""Shim that lets Hydra load vaelab's Optuna sweeper (the code lives in vaelab/sweeps/sweeper.py).

Kept import-light: Hydra imports every plugin module at start-up, and optuna costs seconds.
"""

from hydra.plugins.sweeper import Sweeper


def check_task_config(task_cfg):
    """The runs' full config check (vaelab.runs.config.validate) for the sweep's start, so a bad
    setting stops the sweep before its first trial; vaelab.sweeps may not import vaelab.runs."""
    from vaelab.runs.config import validate

    return validate(task_cfg).sweep


# Hydra 1.4 instantiates plugin configs non-recursively and runs only whitelisted targets: the
# sampler is built here, from Optuna's samplers or the plugin's factories (NSGA-II/III).
SAMPLER_TARGETS = ("hydra_plugins.hydra_optuna_sweeper.*", "optuna.samplers.*")


class TotalTrialsOptunaSweeper(Sweeper):
    def __init__(self, sampler, **kwargs) -> None:
        from hydra.utils import instantiate

        from vaelab.sweeps.sweeper import TotalTrialsImpl

        sampler = instantiate(sampler, _execution_whitelist_=SAMPLER_TARGETS)
        self.sweeper = TotalTrialsImpl(check_config=check_task_config, sampler=sampler, **kwargs)

    def setup(self, *, hydra_context, task_function, config) -> None:
        self.sweeper.setup(hydra_context=hydra_context, task_function=task_function, config=config)

    def sweep(self, arguments):
        return self.sweeper.sweep(arguments)
