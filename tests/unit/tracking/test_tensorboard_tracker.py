"""logger=tensorboard on real event files, read back with TensorBoard's EventAccumulator."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2
from tracked_run import HISTORY, RESULT, single_run

from vaelab.tracking import LoggerConfig, TensorBoardConfig, open_trackers


def read_events(log_dir) -> EventAccumulator:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


def test_epochs_hparams_and_figures_land_in_the_run_directory(tmp_path):
    context = single_run(tmp_path)
    trackers = open_trackers(LoggerConfig(tensorboard=TensorBoardConfig()), context)
    hook = trackers.epoch_hook(None)
    for epoch in range(len(HISTORY)):
        hook(HISTORY[: epoch + 1])
    trackers.finish(RESULT)
    assert trackers.errors == []

    events = read_events(context.run_dir / "tensorboard")
    for column in ("beta", "train_loss", "val_kl", "active_units"):
        scalars = events.Scalars(column)
        assert [s.step for s in scalars] == [r["epoch"] for r in HISTORY]
        assert [s.value for s in scalars] == pytest.approx([r[column] for r in HISTORY])  # float32 in the event file
    assert "epoch" not in events.Tags()["scalars"]
    assert events.Scalars("final/kl")[0].value == 3.0 and events.Scalars("final/factor_r2/trend")[0].value == 0.5
    assert events.Tags()["images"] == ["plots/kl_per_dim"]
    image = events.Images("plots/kl_per_dim")[0]
    assert (image.width, image.height) == (30, 20)

    content = events.PluginTagToContent("hparams")["_hparams_/session_start_info"]
    hparams = plugin_data_pb2.HParamsPluginData.FromString(content).session_start_info.hparams
    assert hparams["loss.beta"].number_value == 0.5 and hparams["model.name"].string_value == "multiscale"
    assert hparams["sweep.objectives"].string_value == '["kl", "mi"]' and hparams["note"].string_value == "null"


def test_images_can_be_left_out(tmp_path):
    context = single_run(tmp_path)
    trackers = open_trackers(LoggerConfig(tensorboard=TensorBoardConfig(images=False)), context)
    trackers.finish(RESULT)
    assert read_events(context.run_dir / "tensorboard").Tags()["images"] == []
