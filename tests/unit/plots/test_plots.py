"""vaelab.plots: every plot writes a real PNG atomically, copes with edge cases, and fails cleanly."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # pyplot is only imported to check that vaelab.plots never registers a figure

import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from vaelab import plots  # noqa: E402
from vaelab.errors import VaelabError  # noqa: E402
from vaelab.plots import common, run, sweep  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------------------------
# inputs


def full_history(n_epochs: int = 12) -> pd.DataFrame:
    epoch = np.arange(n_epochs)
    return pd.DataFrame(
        {
            "epoch": epoch,
            "beta": np.minimum(1.0, epoch / 5),
            "train_recon": 10 / (epoch + 1) + 1,
            "val_recon": 11 / (epoch + 1) + 1.2,
            "train_kl": np.linspace(3.0, 0.2, n_epochs),
            "val_kl": np.linspace(3.1, 0.25, n_epochs),
            "train_kl_clamped": np.maximum(np.linspace(3.0, 0.2, n_epochs), 0.5),
            "active_units": np.linspace(8, 2, n_epochs).round(),
        }
    )


def sweep_table(n: int = 10) -> pd.DataFrame:
    beta = np.geomspace(0.01, 4.0, n)
    recon = 1.0 + beta + RNG.normal(0, 0.05, n)
    active = np.round(16 / (1 + beta))
    return pd.DataFrame(
        {
            "beta": beta,
            "lr": np.geomspace(1e-4, 1e-2, n),
            "schedule": ["linear", "cyclical"] * (n // 2),
            "val_recon": recon,
            "active_units": active,
            "pareto": np.arange(n) % 3 == 0,
        }
    )


def recon_inputs(n_patients: int = 4, hours: int = 24, vitals=("heart_rate", "sbp", "spo2")):
    shape = (n_patients, hours, len(vitals))
    base = np.array([80.0, 120.0, 97.0][: len(vitals)] + [1.0] * max(0, len(vitals) - 3))
    recon = base + RNG.normal(0, 2, shape)
    values = recon + RNG.normal(0, 3, shape)
    masks = (RNG.random(shape) < 0.6).astype(np.float32)
    values[masks == 0] = np.nan
    ids = [f"p{i:03d}" for i in range(n_patients)]
    return values, recon, masks, list(vitals), ids


# One call per public function, so the shared checks below run against all of them.
CASES = {
    "training_curves": lambda p: plots.plot_training_curves(full_history(), p),
    "kl_per_dim": lambda p: plots.plot_kl_per_dim(RNG.exponential(1.0, 16), p, threshold=0.25),
    "latent_spread": lambda p: plots.plot_latent_spread(RNG.exponential(0.2, 16), p),
    "reconstructions": lambda p: plots.plot_reconstructions(*recon_inputs(), p, n_patients=3),
    "kl_heatmap": lambda p: plots.plot_kl_heatmap(RNG.exponential(1.0, (5, 8)), [f"run{i}" for i in range(5)], p),
    "pareto": lambda p: plots.plot_pareto(sweep_table(), "val_recon", "active_units", p, pareto_mask=sweep_table()["pareto"], color="beta"),
    "param_vs_objective": lambda p: plots.plot_param_vs_objective(
        sweep_table(), ["beta", "lr", "schedule"], ["val_recon", "active_units"], p
    ),
}


def assert_png(path, min_px: int = 200) -> None:
    """A real, readable, non-trivial PNG, and nothing else left in its directory."""
    assert path.is_file()
    with open(path, "rb") as handle:
        assert handle.read(8) == PNG_SIGNATURE
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[2] in (3, 4)
    assert image.shape[0] >= min_px and image.shape[1] >= min_px
    assert image.std() > 0  # not a blank canvas
    assert sorted(os.listdir(path.parent)) == [path.name], "temporary files left behind"


@pytest.fixture
def captured(monkeypatch):
    """Summaries of each figure as it is saved (the figure is cleared right after)."""
    summaries: list[list[dict]] = []
    original = common.save

    def spy(fig, path):
        summaries.append(
            [
                {
                    "title": ax.get_title(),
                    "xlabel": ax.get_xlabel(),
                    "ylabel": ax.get_ylabel(),
                    "xscale": ax.get_xscale(),
                    "linestyles": [line.get_linestyle() for line in ax.get_lines()],
                    "n_lines": len(ax.get_lines()),
                    "bar_colors": [to_hex(patch.get_facecolor()) for patch in ax.patches],
                    "bar_heights": [patch.get_height() for patch in ax.patches],
                    "xticklabels": [t.get_text() for t in ax.get_xticklabels()],
                    "legend": [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else [],
                    "n_images": len(ax.images),
                }
                for ax in fig.axes
            ]
        )
        return original(fig, path)

    for module in (run, sweep):  # each figure module calls the save it imported from common
        monkeypatch.setattr(module, "save", spy)
    return summaries


# ----------------------------------------------------------------------------------------------
# shared behaviour


@pytest.mark.parametrize("name", sorted(CASES))
def test_writes_valid_png_and_returns_path(tmp_path, name):
    target = tmp_path / f"{name}.png"
    result = CASES[name](target)
    assert result == target
    assert_png(target)
    assert plt.get_fignums() == [], "a figure leaked into pyplot's global state"


@pytest.mark.parametrize("name", sorted(CASES))
def test_parent_is_a_file_raises_without_partial_output(tmp_path, name):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    with pytest.raises(VaelabError, match="not_a_dir"):
        CASES[name](blocker / "plot.png")
    assert sorted(os.listdir(tmp_path)) == ["not_a_dir"]
    assert blocker.read_text() == "x"


def test_failed_save_keeps_old_file_and_removes_temp(tmp_path, monkeypatch):
    target = tmp_path / "kl.png"
    target.write_bytes(b"old plot")

    def broken_savefig(self, fname, **kwargs):
        Path(fname).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Figure, "savefig", broken_savefig)
    with pytest.raises(VaelabError, match="disk full"):
        plots.plot_kl_per_dim([1.0, 0.5], target)
    assert target.read_bytes() == b"old plot"
    assert sorted(os.listdir(tmp_path)) == ["kl.png"]


def test_overwrites_existing_plot_and_creates_missing_dirs(tmp_path):
    target = tmp_path / "run" / "plots" / "kl.png"
    plots.plot_kl_per_dim([1.0, 0.5, 0.0], target)
    first = target.read_bytes()
    plots.plot_kl_per_dim([3.0, 0.1, 0.0], target)
    assert target.read_bytes() != first
    assert_png(target)


def test_non_png_suffix_is_rejected(tmp_path):
    with pytest.raises(VaelabError, match=r"\.png"):
        plots.plot_kl_per_dim([1.0], tmp_path / "kl.pdf")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# training curves


def test_training_curves_panels(tmp_path, captured):
    plots.plot_training_curves(full_history(), tmp_path / "curves.png")
    recon, kl, beta, active = captured[-1]
    assert recon["n_lines"] == 2 and "train" in recon["legend"] and "validation" in recon["legend"]
    assert "nats" in kl["ylabel"] and "--" in kl["linestyles"]  # clamped term dashed
    assert beta["xlabel"] == "Epoch" and "β" in beta["ylabel"]
    assert "Active units" in active["ylabel"]  # twin axis
    assert set(active["legend"]) == {"β (KL weight)", "active units"}


def test_training_curves_single_epoch(tmp_path):
    assert_png(plots.plot_training_curves(full_history(1), tmp_path / "curves.png"))


def test_training_curves_missing_optional_columns(tmp_path, captured):
    history = full_history()[["epoch", "train_recon", "train_kl"]]
    assert_png(plots.plot_training_curves(history, tmp_path / "curves.png"))
    axes = captured[-1]
    assert len(axes) == 3  # no twin axis without active_units
    assert axes[1]["linestyles"] == ["-"]


def test_training_curves_without_epoch_column_or_with_nans(tmp_path):
    history = full_history().drop(columns=["epoch"])
    history.loc[::2, "val_recon"] = np.nan  # validation every other epoch
    history["val_kl"] = np.nan  # never recorded
    assert_png(plots.plot_training_curves(history, tmp_path / "curves.png"))


def test_training_curves_only_epoch_column(tmp_path):
    assert_png(plots.plot_training_curves(pd.DataFrame({"epoch": [0, 1]}), tmp_path / "curves.png"))


def test_training_curves_empty_history_raises(tmp_path):
    with pytest.raises(VaelabError, match="empty"):
        plots.plot_training_curves(pd.DataFrame(columns=["epoch", "beta"]), tmp_path / "curves.png")
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------------------------
# latent diagnostics


def test_kl_per_dim_sorted_with_original_indices(tmp_path, captured):
    plots.plot_kl_per_dim([0.1, 2.0, 0.0, 1.0], tmp_path / "kl.png", threshold=0.5)
    (ax,) = captured[-1]
    assert ax["bar_heights"] == [2.0, 1.0, 0.1, 0.0]
    assert ax["xticklabels"] == ["1", "3", "0", "2"]
    assert "nats" in ax["ylabel"] and any("free-bits" in text for text in ax["legend"])


@pytest.mark.parametrize("values", [[0.7], 0.7, [np.nan, 1.0]])
def test_kl_per_dim_one_dim_and_nan(tmp_path, values):
    assert_png(plots.plot_kl_per_dim(values, tmp_path / "kl.png"))


def test_kl_per_dim_bad_input(tmp_path):
    with pytest.raises(VaelabError):
        plots.plot_kl_per_dim([], tmp_path / "kl.png")
    with pytest.raises(VaelabError):
        plots.plot_kl_per_dim(np.ones((2, 3)), tmp_path / "kl.png")


def test_latent_spread_colours_active_and_inactive(tmp_path, captured):
    plots.plot_latent_spread([0.05, 0.5, 0.2, 0.001], tmp_path / "spread.png")
    (ax,) = captured[-1]
    assert ax["bar_heights"] == [0.5, 0.2, 0.05, 0.001]
    colors = ax["bar_colors"]
    assert colors[0] == colors[1] != colors[2] == colors[3]
    assert "2 of 4" in ax["title"]
    assert plots.ACTIVE_STD_THRESHOLD == pytest.approx(0.1)


def test_latent_spread_single_dim(tmp_path):
    assert_png(plots.plot_latent_spread([0.0], tmp_path / "spread.png"))


def test_reconstructions_grid(tmp_path, captured):
    values, recon, masks, vitals, ids = recon_inputs(n_patients=5)
    plots.plot_reconstructions(values, recon, masks, vitals, ids, tmp_path / "recon.png", n_patients=2)
    axes = captured[-1]
    assert len(axes) == 2 * 3
    assert axes[0]["ylabel"] == "heart_rate (bpm)" and axes[1]["ylabel"] == "sbp (mmHg)"
    assert "p001" in axes[3]["title"]
    assert axes[-1]["xlabel"] == "Time (hours)"


def test_reconstructions_nan_and_masked_values_and_few_patients(tmp_path):
    values, recon, masks, vitals, ids = recon_inputs(n_patients=1, hours=6, vitals=("heart_rate",))
    values[0, :, 0] = np.nan  # nothing observed at all
    masks[0, :, 0] = 1  # mask claims observed, value NaN: must not plot
    path = plots.plot_reconstructions(values, recon, masks, vitals, ids, tmp_path / "recon.png", n_patients=3)
    assert_png(path)


def test_reconstructions_single_hour_and_custom_units(tmp_path, captured):
    values, recon, masks, vitals, ids = recon_inputs(n_patients=2, hours=1, vitals=("lactate",))
    plots.plot_reconstructions(values, recon, masks, vitals, ids, tmp_path / "recon.png", units={"lactate": "mmol/L"})
    assert captured[-1][0]["ylabel"] == "lactate (mmol/L)"


def test_reconstructions_shape_mismatch(tmp_path):
    values, recon, masks, vitals, ids = recon_inputs()
    with pytest.raises(VaelabError, match="same shape"):
        plots.plot_reconstructions(values, recon[:, :-1], masks, vitals, ids, tmp_path / "r.png")
    with pytest.raises(VaelabError, match="vital names"):
        plots.plot_reconstructions(values, recon, masks, vitals[:-1], ids, tmp_path / "r.png")
    with pytest.raises(VaelabError, match="patient ids"):
        plots.plot_reconstructions(values, recon, masks, vitals, ids[:-1], tmp_path / "r.png")
    assert os.listdir(tmp_path) == []


def test_kl_heatmap_nan_cells_and_single_dim(tmp_path, captured):
    matrix = np.array([[1.0, 0.2, np.nan], [0.0, 0.0, 0.0]])
    assert_png(plots.plot_kl_heatmap(matrix, ["beta=0.1", "beta=4"], tmp_path / "heat.png"))
    heat = captured[-1][0]
    assert heat["n_images"] == 1
    assert any("nats" in ax["ylabel"] for ax in captured[-1][1:])  # colour bar label

    os.remove(tmp_path / "heat.png")
    assert_png(plots.plot_kl_heatmap([[0.3]], ["only run"], tmp_path / "heat.png"))


def test_kl_heatmap_label_mismatch(tmp_path):
    with pytest.raises(VaelabError, match="run labels"):
        plots.plot_kl_heatmap(np.ones((2, 3)), ["a"], tmp_path / "heat.png")


# ----------------------------------------------------------------------------------------------
# sweeps


def test_pareto_front_connected_and_categorical_colour(tmp_path, captured):
    df = sweep_table()
    plots.plot_pareto(df, "val_recon", "active_units", tmp_path / "pareto.png", pareto_mask="pareto", color="schedule")
    ax = captured[-1][0]
    assert ax["n_lines"] == 1  # the front
    assert any(text.startswith("Pareto front") for text in ax["legend"])
    assert {"schedule = cyclical", "schedule = linear"} <= set(ax["legend"])
    assert ax["xlabel"] == "val_recon" and ax["ylabel"] == "active_units"


def test_pareto_without_mask_with_failed_trials(tmp_path, captured):
    df = sweep_table()
    df.loc[0, "val_recon"] = np.nan
    assert_png(plots.plot_pareto(df, "val_recon", "active_units", tmp_path / "pareto.png"))
    assert "1 row" in captured[-1][0]["title"]


def test_pareto_all_missing_and_bad_columns(tmp_path):
    df = pd.DataFrame({"a": [np.nan, np.nan], "b": [1.0, 2.0]})
    assert_png(plots.plot_pareto(df, "a", "b", tmp_path / "p.png"))
    with pytest.raises(VaelabError, match="nope"):
        plots.plot_pareto(df, "a", "nope", tmp_path / "q.png")
    with pytest.raises(VaelabError, match="pareto_mask"):
        plots.plot_pareto(df, "a", "b", tmp_path / "q.png", pareto_mask=[True])


def test_param_vs_objective_log_beta_only_when_positive(tmp_path, captured):
    df = sweep_table()
    plots.plot_param_vs_objective(df, ["beta", "lr", "schedule"], ["val_recon"], tmp_path / "grid.png")
    beta_ax, lr_ax, schedule_ax = captured[-1]
    assert beta_ax["xscale"] == "log" and lr_ax["xscale"] == "linear"
    assert schedule_ax["xticklabels"] == ["cyclical", "linear"]

    df.loc[0, "beta"] = 0.0
    plots.plot_param_vs_objective(df, ["beta"], ["val_recon", "active_units"], tmp_path / "grid2.png")
    assert [ax["xscale"] for ax in captured[-1]] == ["linear", "linear"]


@pytest.mark.parametrize("lo, hi", [(0.01, 4.0), (0.15, 0.6), (0.5, 0.9), (0.03, 3.3), (1e-5, 1e3), (0.7, 0.72)])
def test_log_ticks_are_few_and_inside_the_range(lo, hi):
    ticks = sweep.log_ticks(lo, hi)
    assert 2 <= len(ticks) <= 4 and ticks == sorted(ticks)
    assert all(lo <= t <= hi for t in ticks)
    assert all("e" not in f"{t:g}" for t in ticks if 1e-4 <= t <= 1e4)  # written plainly: 0.01, 0.2, 1


@pytest.fixture
def drawn(monkeypatch):
    """Per saved figure: its figure legend and, per axes, tick labels as drawn and the Pareto rings' points."""
    seen: list[dict] = []
    original = common.save

    def spy(fig, path):
        fig.canvas.draw()
        seen.append(
            {
                "legend": [t.get_text() for legend in fig.legends for t in legend.get_texts()],
                "axes": [
                    {
                        "major": [t.get_text() for t in ax.get_xticklabels() if t.get_text()],
                        "minor": [t.get_text() for t in ax.get_xticklabels(minor=True) if t.get_text()],
                        "rings": sum(len(c.get_offsets()) for c in ax.collections if len(c.get_facecolors()) == 0),
                    }
                    for ax in fig.axes
                ],
            }
        )
        return original(fig, path)

    monkeypatch.setattr(sweep, "save", spy)
    return seen


def test_param_vs_objective_rings_the_pareto_front_and_labels_log_beta_plainly(tmp_path, drawn):
    df = sweep_table()
    df["beta"] = np.linspace(0.15, 0.6, len(df))  # under a decade: matplotlib's own log labels overlap here
    plots.plot_param_vs_objective(df, ["beta", "schedule"], ["val_recon", "active_units"], tmp_path / "grid.png", pareto_mask="pareto")
    figure = drawn[-1]
    assert figure["legend"] == ["trials", f"Pareto front ({int(df['pareto'].sum())})"]
    beta_axes = figure["axes"][0::2]
    assert all(ax["rings"] == df["pareto"].sum() for ax in figure["axes"])
    for ax in beta_axes:
        assert ax["minor"] == [] and 2 <= len(ax["major"]) <= 4
        assert all("10^" not in label and "times" not in label for label in ax["major"]), ax["major"]
        assert all(float(label) > 0 for label in ax["major"])

    plots.plot_param_vs_objective(df, ["beta"], ["val_recon"], tmp_path / "plain.png")  # no front given: no rings, no legend
    assert drawn[-1]["legend"] == [] and drawn[-1]["axes"][0]["rings"] == 0
    with pytest.raises(VaelabError, match="pareto_mask has 2 entries for 10 rows"):
        plots.plot_param_vs_objective(df, ["beta"], ["val_recon"], tmp_path / "bad.png", pareto_mask=[True, False])


def test_param_vs_objective_single_row_and_bad_columns(tmp_path):
    df = sweep_table().iloc[:1]
    assert_png(plots.plot_param_vs_objective(df, ["beta"], ["val_recon"], tmp_path / "grid.png"))
    with pytest.raises(VaelabError, match="missing_param"):
        plots.plot_param_vs_objective(df, ["missing_param"], ["val_recon"], tmp_path / "x.png")
    with pytest.raises(VaelabError):
        plots.plot_param_vs_objective(df, [], ["val_recon"], tmp_path / "x.png")


def test_plot_gets_normal_file_permissions(tmp_path):
    reference = tmp_path / "reference.txt"
    reference.write_text("x")
    target = plots.plot_kl_per_dim([1.0], tmp_path / "kl.png")
    assert target.stat().st_mode & 0o777 == reference.stat().st_mode & 0o777
