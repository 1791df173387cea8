"""vaelab.results on real run directories, a real Hydra multirun and a real Optuna SQLite study."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import pytest
import yaml
from conftest import TINY as CONFTEST_TINY
from optuna.trial import TrialState

from vaelab.analysis.tables import beta_inactive_note, default_columns, format_table, row_id_column
from vaelab.errors import VaelabError
from vaelab.report import write_sweep_report
from vaelab.results import find_run_dirs, join_runs_study, load_kl_per_dim, load_runs, load_study, load_sweep, main, pareto_mask

pytestmark = pytest.mark.slow

TINY = [*CONFTEST_TINY, "trainer.threads=1"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One single run (beta 0.1, two vitals) and a two-job multirun (beta 0.1, 1.0), made in parallel."""
    root = tmp_path_factory.mktemp("runs")
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    single, sweep = root / "outputs" / "single", root / "multirun" / "sweep"
    commands = [
        [sys.executable, "-m", "vaelab", f"hydra.run.dir={single}", *TINY, "loss.beta=0.1", "+data.vitals=[HR,SBP]"],
        [sys.executable, "-m", "vaelab", "-m", f"hydra.sweep.dir={sweep}", *TINY, "loss.beta=0.1,1.0"],
    ]
    procs = [subprocess.Popen(c, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for c in commands]
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
    return {"root": root, "single": single, "sweep": sweep}


def study_storage(path: Path, objectives=("kl", "recon_mse"), name="s") -> str:
    """A real two-objective study: trials 0 and 2 COMPLETE, 1 FAIL, 3 RUNNING.

    ``model.base_channels`` is enqueued, not sampled, so that it varies across trials every time
    (sampled, all four trials draw the same value one time in 27 and it moves under the table).
    """
    url = f"sqlite:///{path}"
    study = optuna.create_study(storage=url, study_name=name, directions=["maximize", "minimize"])
    if objectives is not None:
        study.set_user_attr("objectives", list(objectives))
    for number, channels in enumerate((16, 32, 64, 32)):
        study.enqueue_trial({"model.base_channels": channels})
        trial = study.ask()
        trial.suggest_float("loss.beta", 0.01, 4.0, log=True)
        trial.suggest_categorical("model.base_channels", [16, 32, 64])
        trial.set_user_attr("note", f"t{number}")
        if number in (0, 2):
            study.tell(trial, [1.0 + number, 0.5 - 0.1 * number])
        elif number == 1:
            study.tell(trial, state=TrialState.FAIL)
    return url


# ---------------------------------------------------------------------------------------------
# load_runs


def test_single_and_multirun_load_together(runs):
    df = load_runs([runs["root"]])
    assert len(df) == 3
    assert find_run_dirs(runs["root"]) == sorted([runs["single"], runs["sweep"] / "0", runs["sweep"] / "1"])
    assert sorted(df["run_dir"]) == sorted(str(p) for p in [runs["single"], runs["sweep"] / "0", runs["sweep"] / "1"])

    assert df["loss.beta"].dtype == np.float64
    assert sorted(df["loss.beta"]) == [0.1, 0.1, 1.0]
    assert df["model.latent_dim"].dtype == np.int64 and set(df["model.latent_dim"]) == {4}
    assert df["quiet"].dtype == bool
    assert set(df["trainer"]) == {"debug"}  # a group choice
    assert set(df["model"]) == {"multiscale"} and set(df["data"]) == {"synthetic"} and set(df["seed"]) == {0}
    assert not any(c.startswith("hydra") for c in df.columns)

    single = df.set_index("run_dir").loc[str(runs["single"])]
    assert single["data.vitals"] == "[HR,SBP]"
    assert pd.isna(df.set_index("run_dir").loc[str(runs["sweep"] / "0"), "data.vitals"])
    assert pd.isna(single["sweep_dir"])
    assert set(df.loc[df["run_dir"] != str(runs["single"]), "sweep_dir"]) == {str(runs["sweep"])}

    assert set(df["status"]) == {"ok"}
    for metric in ("kl", "active_units", "latent_dim", "latent_spread", "mi", "recon_mse", "epochs_trained", "train_seconds"):
        assert metric in df.columns and df[metric].notna().all(), metric
    assert df["kl"].dtype == np.float64 and df["active_units"].dtype == np.int64
    # dict metrics flattened with dots; the two-vital run has no DBP
    assert {"factor_r2.level", "factor_r2_pca.level", "recon_mse_per_vital.HR", "branch_recon_mse.daily"} <= set(df.columns)
    assert math.isnan(single["recon_mse_per_vital.DBP"]) and single["recon_mse_per_vital.HR"] > 0
    # lists stay out of the table; the run's own path is run_dir
    assert not {"kl_per_dim", "latent_spread_per_dim", "vitals", "output_dir"} & set(df.columns)
    assert "sweep_trial" not in df.columns  # null in every run: not a vaelab Optuna sweep
    # the short run id: relative to the runs' common parent
    assert sorted(df["run"]) == ["multirun/sweep/0", "multirun/sweep/1", "outputs/single"]
    assert list(load_runs(runs["sweep"])["run"]) == ["0", "1"] and list(load_runs(runs["single"])["run"]) == ["single"]

    columns = list(df.columns)
    params = df.attrs["parameters"]
    assert columns[: len(params)] == params and params[:3] == ["model", "data", "seed"] and "loss.beta" in params
    assert columns[len(params)] == "status"
    assert columns.index("kl") > columns.index("status") and columns[-2:] == ["run_dir", "sweep_dir"]


def test_bad_runs_are_skipped_with_a_warning(runs, tmp_path):
    corrupt, no_config = tmp_path / "corrupt", tmp_path / "no_config"
    for target in (corrupt, no_config):
        shutil.copytree(runs["single"], target)
    (corrupt / "metrics.json").write_text('{"status": "ok", "kl": ')
    (no_config / ".hydra" / "config.yaml").unlink()
    with pytest.warns(UserWarning) as record:
        df = load_runs([runs["sweep"], tmp_path])
    messages = " ".join(str(w.message) for w in record)
    assert str(corrupt) in messages and "metrics.json" in messages
    assert str(no_config) in messages and "config.yaml" in messages
    assert len(df) == 2 and set(df["loss.beta"]) == {0.1, 1.0}


def test_no_runs_is_an_error_naming_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VaelabError, match="no runs.*empty"):
        load_runs(tmp_path / "empty")
    with pytest.raises(VaelabError, match="no such file"):
        load_runs(tmp_path / "missing")


def test_kl_per_dim_matrix_lines_up_with_the_table(runs):
    df = load_runs(runs["sweep"])
    matrix, labels = load_kl_per_dim(df)
    assert matrix.shape == (2, 4) and np.isfinite(matrix).all() and labels == ["0", "1"]
    with pytest.warns(UserWarning, match="nothing-here"):
        matrix, labels = load_kl_per_dim([runs["sweep"] / "0", runs["single"], runs["root"] / "nothing-here"])
    assert matrix.shape == (3, 4) and np.isnan(matrix[2]).all()


# ---------------------------------------------------------------------------------------------
# Optuna


def test_load_study_reads_states_params_and_objective_names(tmp_path):
    url = study_storage(tmp_path / "optuna.db")
    df = load_study(url)
    assert list(df["number"]) == [0, 1, 2, 3]
    assert list(df["state"]) == ["COMPLETE", "FAIL", "COMPLETE", "RUNNING"]
    assert list(df.columns[:6]) == ["number", "state", "loss.beta", "model.base_channels", "kl", "recon_mse"]
    assert df["loss.beta"].dtype == np.float64 and df["loss.beta"].between(0.01, 4.0).all()
    assert df["kl"].tolist()[0::2] == [1.0, 3.0] and df["kl"].isna().tolist()[1::2] == [True, True]
    assert df.loc[2, "recon_mse"] == pytest.approx(0.3)
    assert {"datetime_start", "duration_s", "note"} <= set(df.columns) and df.loc[0, "duration_s"] >= 0
    assert list(df["note"]) == ["t0", "t1", "t2", "t3"]
    assert df.attrs["directions"] == ["maximize", "minimize"]


def test_load_study_without_objective_names_and_study_choice(tmp_path):
    url = study_storage(tmp_path / "optuna.db", objectives=None, name="first")
    assert {"value_0", "value_1"} <= set(load_study(url).columns)
    study_storage(tmp_path / "optuna.db", name="second")
    with pytest.raises(VaelabError, match="first.*second"):
        load_study(url)
    assert "kl" in load_study(url, "second").columns
    with pytest.raises(VaelabError, match="no study 'third'"):
        load_study(url, "third")
    with pytest.raises(VaelabError, match="no such file"):
        load_study(f"sqlite:///{tmp_path / 'missing.db'}")
    assert not (tmp_path / "missing.db").exists()
    with pytest.raises(VaelabError, match="cannot read Optuna storage"):
        load_study("nosuchdialect://x")


def test_load_sweep_joins_runs_and_trials(runs, tmp_path):
    """The multirun with sweep_trial set as vaelab's Optuna sweeper sets it, beside its study."""
    sweep = tmp_path / "sweep"
    shutil.copytree(runs["sweep"], sweep)
    for job in (0, 1):
        config_file = sweep / str(job) / ".hydra" / "config.yaml"
        config = yaml.safe_load(config_file.read_text())
        config["sweep_trial"] = {0: 0, 1: 2}[job]
        config_file.write_text(yaml.safe_dump(config))
    study_storage(sweep / "optuna.db")

    df = load_sweep(sweep)
    assert list(df["number"]) == [0, 1, 2, 3]  # every trial, run or not
    assert list(df["state"]) == ["COMPLETE", "FAIL", "COMPLETE", "RUNNING"]
    assert df.loc[0, "run_dir"] == str(sweep / "0") and df.loc[2, "run_dir"] == str(sweep / "1")
    assert df["run_dir"].isna().tolist() == [False, True, False, True]
    assert df.loc[2, "loss.beta"] == 1.0  # the run's own config wins over the study's copy
    assert {"kl", "kl_study", "recon_mse_study"} <= set(df.columns)
    assert df.loc[2, "kl_study"] == 3.0

    assert "number" not in load_sweep(runs["sweep"]).columns  # a plain multirun: the runs alone
    with pytest.raises(VaelabError, match="sweep_trial"):
        join_runs_study(load_runs(runs["sweep"]), load_study(f"sqlite:///{sweep / 'optuna.db'}"))


# ---------------------------------------------------------------------------------------------
# Pareto


def test_pareto_mask_on_a_hand_made_frame():
    df = pd.DataFrame(
        {
            "kl": [3.0, 2.0, 1.0, 5.0, np.nan, 3.0, 0.5],
            "spread": [1.0, 1.0, 2.0, 5.0, 3.0, 1.0, 0.5],
            "recon_mse": [0.5, 0.6, 0.9, 0.1, 0.2, 0.5, 0.05],
            "status": ["ok", "ok", "ok", "failed", "ok", "ok", "ok"],
        }
    )
    mask = pareto_mask(df, ["kl", "spread", "recon_mse"], ["maximize", "maximize", "minimize"])
    # 1 is dominated by 0; 3 failed (it would dominate everything); 4 has no kl; 0 and 5 tie and both stay
    assert mask.dtype == bool and mask.tolist() == [True, False, True, False, False, True, True]

    trials = pd.DataFrame({"value_0": [1.0, 2.0, 3.0, 0.0], "state": ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]})
    assert pareto_mask(trials, ["value_0"], ["minimize"]).tolist() == [False, False, False, True]
    assert pareto_mask(trials, ["value_0"], ["maximize"]).tolist() == [False, True, False, False]
    with pytest.raises(VaelabError, match="'nope' is not a column"):
        pareto_mask(df, ["nope"], ["maximize"])
    with pytest.raises(VaelabError, match="direction"):
        pareto_mask(df, ["kl"], ["up"])


# ---------------------------------------------------------------------------------------------
# CLI


def test_cli_prints_a_table_and_writes_a_csv(runs, tmp_path, capsys):
    out_csv = tmp_path / "out" / "runs.csv"
    assert main([str(runs["single"]), str(runs["sweep"]), "--csv", str(out_csv)]) == 0
    printed = capsys.readouterr()
    lines = printed.out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["run", "pareto"] and {"loss.beta", "status", "kl", "recon_mse", "factor_r2.level"} <= set(header)
    assert sorted(line.split()[0] for line in lines[1:4]) == ["multirun/sweep/0", "multirun/sweep/1", "outputs/single"]
    assert "data.n_patients" not in header and "same in every row:" in printed.out  # constants go under the table
    assert "*" in printed.out and len([line for line in lines[1:] if line.strip().startswith("*") or " ok " in line]) == 3

    back = pd.read_csv(out_csv)
    full = load_runs([runs["single"], runs["sweep"]])
    assert len(back) == 3 and sorted(back["run_dir"]) == sorted(full["run_dir"])
    assert set(full.columns) <= set(back.columns) and back["pareto"].dtype == bool and back["pareto"].any()
    assert back["kl"].is_monotonic_decreasing  # sorted by the first objective, kl:max

    assert (
        main([str(runs["sweep"]), "--columns", "loss.beta,kl", "--sort", "loss.beta", "--ascending", "--objectives", "recon_mse:min"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["pareto", "loss.beta", "kl"]
    assert [float(line.split()[-2]) for line in lines[1:]] == [0.1, 1.0]


def test_cli_shows_a_study_alone(tmp_path, capsys):
    url = study_storage(tmp_path / "optuna.db")
    assert main(["--storage", url, "--objectives", "kl:max", "recon_mse:min"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["number", "pareto", "state"] and {"loss.beta", "kl", "recon_mse"} <= set(lines[0].split())
    # trial 2 (kl 3, recon 0.3) dominates trial 0 (kl 1, recon 0.5); FAIL and RUNNING trials sort last
    assert lines[1].split()[:3] == ["2", "*", "COMPLETE"] and lines[2].split()[:2] == ["0", "COMPLETE"]
    assert len(lines) == 5


def test_cli_errors_are_one_line(tmp_path, capsys):
    """VaelabError -> one line on stderr and exit status 2 (``python -m vaelab.results`` exits with main's value)."""
    assert main([str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaelab: error:") and "missing" in err and len(err.strip().splitlines()) == 1
    assert main(["--storage", f"sqlite:///{tmp_path}/none.db"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("vaelab: error:") and "none.db" in err and "Traceback" not in err
    assert main([str(tmp_path), "--sort", "kl"]) == 2  # an empty directory: no runs
    assert "no runs" in capsys.readouterr().err


def test_runs_that_failed_on_their_input_are_hidden_by_default_and_shown_on_request(runs, tmp_path, capsys):
    """A real failed run (a missing Layer-2 file) beside real finished ones."""
    root = tmp_path / "mixed"
    shutil.copytree(runs["single"], root / "single")
    failed = subprocess.run(
        [
            sys.executable,
            "-m",
            "vaelab",
            f"hydra.run.dir={root / 'failed'}",
            *[o for o in TINY if not o.startswith("data.")],
            "data=h5",
            f"data.path={tmp_path / 'missing.h5'}",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert failed.returncode == 2 and (root / "failed" / "metrics.json").is_file()
    shown = load_runs(root)
    assert list(shown["status"]) == ["ok"] and shown.attrs["failed_hidden"] == 1
    both = load_runs(root, failed=True)
    assert sorted(both["status"]) == ["failed", "ok"] and both.attrs["failed_hidden"] == 0
    with pytest.raises(VaelabError, match="all 1 runs under .* failed; show them with failed=True"):
        load_runs(root / "failed")
    assert main([str(root), "--failed", "--columns", "status"]) == 0
    assert "failed" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Which row is which; where beta had no effect


def test_the_row_id_is_the_trial_number_in_one_sweep_and_the_run_otherwise():
    runs = pd.DataFrame({"run": ["a/0", "a/1", "b/0"], "sweep_trial": [0, 1, 0], "status": ["ok"] * 3, "pareto": [True, False, False]})
    assert row_id_column(runs) == "run"  # two sweeps' trial numbers collide
    assert row_id_column(runs.iloc[:2]) == "sweep_trial"
    assert row_id_column(runs.assign(sweep_trial=[0, 1, None])) == "run"  # a run outside any sweep
    joined = runs.iloc[:2].assign(number=[0, 1])
    assert row_id_column(joined) == "number" and default_columns(joined)[0] == "number"
    assert row_id_column(pd.DataFrame({"kl": [1.0]})) is None
    assert default_columns(runs)[0] == "run"
    header = format_table(runs, default_columns(runs)).splitlines()[0].split()
    assert header[:3] == ["run", "pareto", "status"]
    assert format_table(runs, ["status", "run"]).splitlines()[0].split() == ["pareto", "status", "run"]


def test_the_beta_inactive_note_names_the_rows_whose_beta_had_no_effect():
    df = pd.DataFrame(
        {
            "number": [3, 0, 1, 2],
            "beta_inactive": [True, False, True, None],  # trial 2 has no value (a failed trial, an older run)
            "free_bits_held_fraction": [1.0, 0.5, 1.0, None],
            "status": ["ok", "ok", "ok", None],
            "pareto": [False] * 4,
        }
    )
    note = beta_inactive_note(df)
    assert note.startswith("beta had no effect in trials 1, 3 (2 of 3;") and "loss.free_bits" in note
    assert "beta_inactive" in default_columns(df) and "free_bits_held_fraction" in default_columns(df)
    assert beta_inactive_note(df.assign(beta_inactive=False)) == ""
    assert beta_inactive_note(df.drop(columns="beta_inactive")) == ""
    runs = pd.DataFrame({"run": ["x", "y"], "beta_inactive": [True, False]})
    assert beta_inactive_note(runs).startswith("beta had no effect in run x (1 of 2;")


def _mark_beta_inactive(run_dir: Path, inactive: bool) -> None:
    metrics_file = run_dir / "metrics.json"
    metrics = json.loads(metrics_file.read_text())
    metrics.update(free_bits_held_fraction=1.0 if inactive else 0.25, beta_inactive=inactive)
    metrics_file.write_text(json.dumps(metrics))


def test_the_cli_and_the_sweep_report_say_where_beta_had_no_effect(runs, tmp_path, capsys):
    """Real run directories whose metrics.json say beta_inactive (job 0 / trial 0) or not (job 1 / trial 2)."""
    sweep = tmp_path / "sweep"
    shutil.copytree(runs["sweep"], sweep)
    for job, inactive in ((0, True), (1, False)):
        _mark_beta_inactive(sweep / str(job), inactive)
    assert main([str(sweep)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header = lines[0].split()
    assert header[:2] == ["run", "pareto"] and {"free_bits_held_fraction", "beta_inactive"} <= set(header)
    assert lines[-1].startswith("beta had no effect in run 0 (1 of 2;")

    for job in (0, 1):  # as vaelab's Optuna sweeper writes them: trials 0 and 2 of the study beside them
        config_file = sweep / str(job) / ".hydra" / "config.yaml"
        config = yaml.safe_load(config_file.read_text())
        config["sweep_trial"] = {0: 0, 1: 2}[job]
        config_file.write_text(yaml.safe_dump(config))
    study_storage(sweep / "optuna.db")
    report = write_sweep_report(sweep)
    text = (report / "table.txt").read_text().splitlines()
    assert text[0].split()[:2] == ["number", "pareto"] and "beta_inactive" in text[0].split()
    assert text[-1].startswith("beta had no effect in trial 0 (1 of 2;")
    assert {"table.csv", "table.txt", "pareto.png", "params_vs_objectives.png", "kl_heatmap.png"} <= {p.name for p in report.iterdir()}
