"""Each launcher's share of a trial's resources, read from the real composed launcher configs
(conf/hydra/launcher/*.yaml and the plugins' own), and the checks that keep trainer and launcher in
agreement."""

import logging

import pytest

from vaelab.errors import VaelabError
from vaelab.sweeps.launchers import check_launcher, launcher_kind, trial_cuda_memory_fraction, trial_gpus, trial_threads

SWEEP = ["hparams_search=collapse", "hydra.sweep.dir=/sweep"]


@pytest.fixture
def launcher(compose_config):
    def _launcher(*overrides):
        return compose_config([*SWEEP, *overrides], return_hydra_config=True).hydra.launcher

    return _launcher


def test_each_launcher_gives_a_trial_its_share_of_the_cores(launcher):
    assert trial_threads(launcher()) is None  # basic: one trial at a time
    assert trial_threads(launcher("hydra/launcher=joblib")) == 1
    slurm = launcher("hydra/launcher=slurm")
    assert launcher_kind(slurm) == "submitit_slurm" and trial_threads(slurm) == slurm.cpus_per_task
    assert trial_threads(launcher("hydra/launcher=slurm", "hydra.launcher.cpus_per_task=6")) == 6
    local = launcher("hydra/launcher=slurm_local")
    assert launcher_kind(local) == "submitit_local" and trial_threads(local) == trial_threads(slurm)
    ray = launcher("hydra/launcher=ray", "hydra.launcher.ray.remote.num_cpus=3")
    assert launcher_kind(ray) == "ray" and trial_threads(ray) == 3


def test_a_gpu_per_trial_is_read_from_the_launcher(launcher):
    assert trial_gpus(launcher("hydra/launcher=slurm")) == 0
    assert trial_gpus(launcher("hydra/launcher=slurm", "hydra.launcher.gpus_per_node=1")) == 1
    assert trial_gpus(launcher("hydra/launcher=slurm_local", "hydra.launcher.gpus_per_node=2")) == 2
    assert trial_gpus(launcher("hydra/launcher=ray", "+hydra.launcher.ray.remote.num_gpus=1")) == 1
    assert trial_gpus(launcher("hydra/launcher=joblib")) == 0


@pytest.mark.parametrize("name", ["slurm", "slurm_local"])
def test_a_gpu_the_trainer_would_leave_idle_is_refused(launcher, name):
    with pytest.raises(VaelabError, match=r"^hydra.launcher.gpus_per_node=1 gives each trial a GPU, but trainer.device=cpu"):
        check_launcher(launcher(f"hydra/launcher={name}", "hydra.launcher.gpus_per_node=1"), "cpu", "none", None)
    check_launcher(launcher(f"hydra/launcher={name}", "hydra.launcher.gpus_per_node=1"), "cuda", "none", None)


def test_cuda_without_a_gpu_from_the_launcher_is_refused(launcher):
    with pytest.raises(VaelabError, match=r"trainer.device=cuda, but hydra.launcher.gpus_per_node is not set"):
        check_launcher(launcher("hydra/launcher=slurm"), "cuda", "none", None)
    with pytest.raises(VaelabError, match=r"hydra.launcher.ray.remote.num_gpus is not set"):
        check_launcher(launcher("hydra/launcher=ray"), "cuda:0", "none", None)
    check_launcher(launcher("hydra/launcher=joblib"), "cuda", "none", None)  # one machine: its GPU is there


def test_a_pruned_slurm_sweep_on_a_node_local_study_is_warned_about(launcher, caplog):
    slurm = launcher("hydra/launcher=slurm")
    with caplog.at_level(logging.WARNING, logger="vaelab.sweeps.launchers"):
        check_launcher(slurm, "cpu", "collapse", "sqlite:////tmp/optuna.db")
        check_launcher(slurm, "cpu", "none", "sqlite:////tmp/optuna.db")  # no pruning: only the sweep process writes
        check_launcher(slurm, "cpu", "median", "sqlite:////shared/sweeps/optuna.db")
    assert [r.getMessage().split(" is on")[0] for r in caplog.records] == ["hydra.sweeper.storage sqlite:////tmp/optuna.db"]


def test_trials_sharing_one_gpu_split_its_memory(launcher):
    joblib = launcher("hydra/launcher=joblib")
    assert trial_cuda_memory_fraction(joblib, 8, "cuda") == pytest.approx(1 / 8)
    assert trial_cuda_memory_fraction(joblib, 1, "cuda") is None  # one at a time: the whole GPU
    assert trial_cuda_memory_fraction(joblib, 8, "cpu") is None
    assert trial_cuda_memory_fraction(launcher("hydra/launcher=slurm"), 8, "cuda") is None  # a GPU per job


def test_a_ray_address_where_nothing_answers_is_refused_at_once(launcher):
    import socket

    with socket.socket() as free:  # a port on the loopback that nobody listens on
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(VaelabError, match=rf"^hydra.launcher.ray.init.address=127.0.0.1:{port}: no Ray cluster answers there"):
        check_launcher(launcher("hydra/launcher=ray", f"hydra.launcher.ray.init.address=127.0.0.1:{port}"), "cpu", "none", None)
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        check_launcher(launcher("hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}"), "cpu", "none", None)
    for address in ("null", "auto", "local"):  # Ray's to resolve
        check_launcher(launcher("hydra/launcher=ray", f"hydra.launcher.ray.init.address={address}"), "cpu", "none", None)
