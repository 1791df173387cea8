"""Real Optuna sweeps through the real CLI (tiny data, debug trainer) into tmp_path."""

import json
import os
import subprocess
import sys

import optuna
import pytest
from optuna.trial import TrialState
from physionet_files import write_cohort

from vaelab.evaluation.objectives import objectives
from vaelab.sweeps.config import SweepConfig
from vaelab.sweeps.sweeper import EXIT_BAD_CONFIG, EXIT_GAVE_UP

pytestmark = pytest.mark.slow

TINY_SWEEP = ["hparams_search=collapse", "data.n_patients=24", "data.seq_len=48", "trainer=debug", "model.latent_dim=4"]


def sweep(tmp_path, sweep_dir, *overrides, timeout=600, env=None):
    return subprocess.run(
        [sys.executable, "-m", "vaelab", *TINY_SWEEP, f"hydra.sweep.dir={sweep_dir}", *overrides],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def load(sweep_dir):
    return optuna.load_study(study_name="collapse", storage=f"sqlite:///{sweep_dir}/optuna.db")


def test_a_sweep_runs_its_total_and_a_rerun_resumes_only_the_missing_trials(tmp_path):
    sweep_dir = tmp_path / "sweep"
    first = sweep(tmp_path, sweep_dir, "hydra.sweeper.n_trials=2")
    assert first.returncode == 0, first.stderr[-2000:]
    study = load(sweep_dir)
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 2
    assert study.user_attrs["objectives"] == ["kl", "latent_spread", "recon_mse"]
    for t in trials:
        metrics = json.loads((sweep_dir / f"trial_{t.number}" / "metrics.json").read_text())
        assert t.values == objectives(metrics, SweepConfig())
        assert set(t.params) == {"loss.beta", "loss.free_bits", "schedule.cycle_epochs", "model.base_channels"}
        assert 0.01 <= t.params["loss.beta"] <= 4.0 and t.params["model.base_channels"] in (16, 32, 64)
        assert not (sweep_dir / f"trial_{t.number}" / "plots").exists()  # per-trial PNGs are off in sweeps
        assert metrics["fixed_seconds"] == pytest.approx(metrics["seconds"] - metrics["timings"]["train"])
    # the trials of one process share the prepared data: only the first one prepares it
    cached = [json.loads((sweep_dir / f"trial_{t.number}" / "metrics.json").read_text())["data_cached"] for t in trials]
    assert cached == [False, True]
    before = {t.number: t.values for t in trials}

    again = sweep(tmp_path, sweep_dir, "hydra.sweeper.n_trials=3")  # resume to a total of 3
    assert again.returncode == 0, again.stderr[-2000:]
    trials = load(sweep_dir).get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 3
    assert {t.number: t.values for t in trials[:2]} == before
    assert sorted(p.name for p in sweep_dir.glob("trial_*")) == ["trial_0", "trial_1", "trial_2"]

    done = sweep(tmp_path, sweep_dir, "hydra.sweeper.n_trials=3")  # nothing left to do
    assert done.returncode == 0 and len(load(sweep_dir).get_trials()) == 3


def test_a_diverging_trial_fails_and_the_sweep_completes(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = sweep(
        tmp_path,
        sweep_dir,
        "hydra.sweeper.n_trials=2",
        "schedule=constant",
        "trainer.lr=choice(0.001,1e12)",
        "hydra.sweeper.sampler.seed=3",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    trials = load(sweep_dir).get_trials()
    states = [t.state for t in trials]
    assert states.count(TrialState.COMPLETE) == 2
    failed = [t for t in trials if t.state == TrialState.FAIL]
    assert failed, f"seed 3 should draw the diverging lr at least once: {[t.params for t in trials]}"
    for t in failed:
        assert t.params["trainer.lr"] == 1e12
        metrics = json.loads((sweep_dir / f"trial_{t.number}" / "metrics.json").read_text())
        assert metrics["status"] == "diverged"


def test_a_sweep_whose_every_trial_fails_gives_up_in_one_line_with_its_own_status(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = sweep(tmp_path, sweep_dir, "hydra.sweeper.n_trials=2", "schedule=constant", "trainer.lr=1e12", "model.base_channels=8")
    assert proc.returncode == EXIT_GAVE_UP, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Error executing job" not in proc.stderr
    assert proc.stderr.splitlines()[-1] == (
        "vaelab: error: sweep collapse: 0 of 2 trials complete (2 failed, 0 pruned); gave up after 2 failed trials in this process "
        "(last: run diverged: training diverged at epoch 0: loss is nan (try a smaller trainer.lr))"
    )
    assert [t.state for t in load(sweep_dir).get_trials()] == [TrialState.FAIL] * 2
    assert (sweep_dir / "report" / "table.csv").is_file()  # the report is written before the exit


@pytest.mark.parametrize(
    "overrides, env, message",
    [
        (
            ["sweep.stale_after_seconds=5", "sweep.heartbeat_seconds=10"],
            {},
            "vaelab: error: config sweep.stale_after_seconds: must exceed sweep.heartbeat_seconds",
        ),
        (
            ["hydra.sweeper.storage=env"],
            {"VAELAB_STORAGE": ""},
            "vaelab: error: config hydra.sweeper.storage: 'env' reads the URL from $VAELAB_STORAGE, which is not set",
        ),
        (["hydra.sweeper.n_jobs=0"], {}, "vaelab: error: config hydra.sweeper.n_jobs: must be >= 1, got 0"),
    ],
)
def test_a_bad_sweep_setting_stops_the_sweep_before_its_first_trial(tmp_path, overrides, env, message):
    sweep_dir = tmp_path / "sweep"
    proc = sweep(tmp_path, sweep_dir, "hydra.sweeper.n_trials=2", *overrides, timeout=120, env=dict(os.environ, **env))
    assert proc.returncode == EXIT_BAD_CONFIG
    assert proc.stderr.strip() == message
    assert not list(sweep_dir.glob("trial_*")) and not (sweep_dir / "optuna.db").exists()


def test_a_run_breaking_a_constraint_gets_the_finite_penalty(tmp_path):
    sweep_dir = tmp_path / "sweep"
    proc = sweep(tmp_path, sweep_dir, "hydra.sweeper.n_trials=1", "sweep.max_metrics.kl_per_latent_dim=-1.0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    (trial,) = load(sweep_dir).get_trials()
    assert trial.state == TrialState.COMPLETE and trial.values == [-1e6, -1e6, 1e6]


def test_two_sweeps_started_together_get_different_directories(tmp_path):
    cmd = [sys.executable, "-m", "vaelab", *TINY_SWEEP, "hydra.sweeper.n_trials=0"]  # create the study, run nothing
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    sweep_dirs = [p.parent for p in (tmp_path / "multirun").glob("*/*/optuna.db")]
    assert len(sweep_dirs) == 2 and sweep_dirs[0] != sweep_dirs[1]


def test_storage_creation_survives_a_concurrent_schema_race(tmp_path, monkeypatch):
    """Two workers on a fresh database: the loser's first connect fails on the schema's version row."""
    import sqlalchemy.exc

    from vaelab.sweeps import sweeper

    real = optuna.storages.RDBStorage
    calls = []

    def racing(url, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            real(url, **kwargs)  # the other worker wins the race and creates the schema ...
            raise sqlalchemy.exc.IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed"))
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    monkeypatch.setattr(sweeper.time, "sleep", lambda s: None)
    storage = sweeper.make_storage(f"sqlite:///{tmp_path}/optuna.db", 10, 60)
    assert len(calls) == 2 and isinstance(storage, real)

    def always_locked(url, **kwargs):
        raise sqlalchemy.exc.OperationalError("CREATE TABLE", {}, Exception("database is locked"))

    monkeypatch.setattr(optuna.storages, "RDBStorage", always_locked)
    with pytest.raises(sqlalchemy.exc.OperationalError):  # a database that never comes up is still an error
        sweeper.make_storage(f"sqlite:///{tmp_path}/other.db", 10, 60)
    monkeypatch.undo()
    assert optuna.create_study(storage=storage, study_name="s").study_name == "s"  # the retried storage works


def test_the_recovery_sweep_scores_trials_on_nested_factor_recovery(tmp_path):
    sweep_dir = tmp_path / "recovery"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaelab",
            "hparams_search=recovery",
            "data.n_patients=40",
            "data.seq_len=48",
            "trainer=debug",
            "model.latent_dim=8",
            f"hydra.sweep.dir={sweep_dir}",
            "hydra.sweeper.n_trials=2",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="recovery", storage=f"sqlite:///{sweep_dir}/optuna.db")
    assert study.user_attrs["objectives"] == ["factor_r2.episode_rate", "factor_r2.daily_amplitude", "recon_mse"]
    for t in study.get_trials():
        assert t.state == TrialState.COMPLETE
        metrics = json.loads((sweep_dir / f"trial_{t.number}" / "metrics.json").read_text())
        assert t.values == [metrics["factor_r2"]["episode_rate"], metrics["factor_r2"]["daily_amplitude"], metrics["recon_mse"]]
        assert {"loss.band_power_weight", "model.posterior_bn", "model.latent_groups"} <= set(t.params)


def test_the_real_data_sweep_selects_on_the_validation_probe_and_never_on_the_test_stays(tmp_path):
    source = write_cohort(tmp_path / "psv", n=60)
    common = [
        "hparams_search=physionet2019",
        f"data.source={source}",
        "data.seq_len=24",
        f"data.cache_dir={tmp_path / 'cache'}",
        "trainer=debug",
        "model.base_channels=8",
        "hydra.sweeper.n_trials=2",
    ]
    sweep_dir = tmp_path / "physionet"
    proc = subprocess.run(
        [sys.executable, "-m", "vaelab", *common, f"hydra.sweep.dir={sweep_dir}"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    study = optuna.load_study(study_name="physionet2019", storage=f"sqlite:///{sweep_dir}/optuna.db")
    assert study.user_attrs["objectives"] == ["probe_val_auroc", "recon_mse"]
    for t in study.get_trials():
        assert t.state == TrialState.COMPLETE
        metrics = json.loads((sweep_dir / f"trial_{t.number}" / "metrics.json").read_text())
        assert t.values == [metrics["probe_val_auroc"], metrics["recon_mse"]]
        assert metrics["probe_n_val"] + metrics["probe_n_test"] < 60  # a part of the training stays, not the test stays
        assert {"model.latent_dim", "loss.observation_weight", "model.observation_head"} <= set(t.params)

    for objective in ("probe_auroc", "probe_table.sepsis.embedding.linear.auroc"):
        refused = subprocess.run(
            [
                sys.executable,
                "-m",
                "vaelab",
                *common,
                f"hydra.sweep.dir={tmp_path / 'refused'}",
                f"sweep.objectives=[{objective}]",
                "sweep.directions=[maximize]",
            ],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert refused.returncode == EXIT_BAD_CONFIG
        assert refused.stderr.strip() == (
            f"vaelab: error: config sweep.objectives: {objective!r} is scored on the probe's test stays, which no selection may read; "
            "use 'probe_val_auroc' (the same probe on a validation part of the training stays)"
        )
        assert not list((tmp_path / "refused").glob("trial_*")) and not (tmp_path / "refused" / "optuna.db").exists()
