"""The plan's original model (benchmark baseline only) and ``python benchmarks/speed.py``."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch
from conftest import REPO

from vaelab.data.prepare import prepare_data
from vaelab.data.synthetic import generate_synthetic
from vaelab.losses import LossConfig, MultiScaleVAELoss
from vaelab.models import MultiScaleConfig
from vaelab.models.plan_baseline import PlanMultiScaleConv1DVAE
from vaelab.training import TrainConfig, train

SPEED = REPO / "benchmarks" / "speed.py"


@pytest.fixture(scope="module")
def speed():
    """benchmarks/speed.py as a module (a script, not part of the vaelab package)."""
    spec = importlib.util.spec_from_file_location("benchmarks_speed", SPEED)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread: on a loaded 2-core machine two OpenMP threads make tiny models ~100x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_plan_baseline_has_the_plans_shapes():
    torch.manual_seed(0)
    vae = PlanMultiScaleConv1DVAE(input_dim=7, seq_len=745, latent_dim=32, base_channels=64)
    for name in ("branch_local", "branch_hourly", "branch_daily", "branch_multiday"):
        assert hasattr(vae.encoder, name) and hasattr(vae.decoder, name)
    x = torch.randn(4, 745, 7)
    mu, logvar = vae.encoder(x)
    assert mu.shape == logvar.shape == (4, 32)
    recon, mu, logvar = vae(x)
    assert recon.shape == (4, 745, 7) and mu.shape == (4, 32)
    recon, branches = vae.decoder(torch.randn(4, 32), return_branches=True)
    assert recon.shape == (4, 745, 7) and [b.shape for b in branches] == [(4, 745, 7)] * 4
    assert sum(p.numel() for p in vae.parameters()) == 1092423  # the plan's model at 64 channels


def test_plan_baseline_keeps_the_replicate_padding_defect():
    """docs/design-notes.md §1 defect 1: local, hourly and daily make 512 real steps; the last 233 repeat step 511."""
    torch.manual_seed(0)
    vae = PlanMultiScaleConv1DVAE(input_dim=7, seq_len=745, latent_dim=32, base_channels=32).eval()
    with torch.no_grad():
        _, branches = vae.decode(torch.randn(3, 32), return_branches=True)
    for branch in branches[:3]:  # local, hourly, daily
        tail = branch[:, 512:, :]
        assert tail.shape[1] == 233
        assert torch.equal(tail, branch[:, 511:512, :].expand_as(tail))
        assert not torch.equal(branch[:, 510, :], branch[:, 511, :])  # real steps before the padding
    multiday = branches[3]  # 1024 steps, trimmed: no constant tail
    assert not torch.equal(multiday[:, 744, :], multiday[:, 743, :])


def test_plan_baseline_ignores_the_mask_and_samples_in_encode():
    torch.manual_seed(0)
    vae = PlanMultiScaleConv1DVAE(input_dim=7, seq_len=48, latent_dim=4, base_channels=8).eval()
    x = torch.randn(2, 48, 7)
    with torch.no_grad():
        mu_a, _ = vae.encode_distribution(x, torch.ones_like(x))
        mu_b, _ = vae.encode_distribution(x, torch.zeros_like(x))
        z1, mu1, _ = vae.encode(x)
        z2, mu2, _ = vae.encode(x)
    assert torch.equal(mu_a, mu_b)
    assert torch.equal(mu1, mu2) and not torch.equal(z1, z2)


def test_plan_baseline_trains_through_vaelab_train():
    data = generate_synthetic(n_patients=12, seq_len=48, seed=0)
    prepared = prepare_data(data, seed=0)
    tr, va = prepared.train_idx, prepared.val_idx
    torch.manual_seed(0)
    vae = PlanMultiScaleConv1DVAE(input_dim=data.n_vitals, seq_len=48, latent_dim=4, base_channels=8)
    before = [p.detach().clone() for p in vae.parameters()]
    loss = MultiScaleVAELoss(beta=0.5, free_bits=2.0, warmup_epochs=5, cycle_epochs=10, branch_weight=1.0)  # the plan's loss
    config = TrainConfig(epochs=1, batch_size=8, patience=1)
    result = train(vae, loss, prepared.x[tr], prepared.masks[tr], prepared.x[va], prepared.masks[va], config, seed=0)
    assert result.epochs_trained == 1
    assert np.isfinite(result.history[0]["val_recon"])
    assert any(not torch.equal(a, b) for a, b in zip(before, vae.parameters()))


def test_bench_quick_writes_json(tmp_path):
    out = tmp_path / "bench" / "out.json"
    proc = subprocess.run(
        [sys.executable, "benchmarks/speed.py", "--quick", "--threads", "1", "--json", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ratio" in proc.stdout and "train_seq/s" in proc.stdout
    report = json.loads(out.read_text())
    assert report["header"]["torch"] == torch.__version__ and report["header"]["threads"] >= 1
    assert report["quality"] is None
    (row,) = report["speed"]
    assert set(row["models"]) == {"plan", "vaelab"}
    for model in row["models"].values():
        for key in ("train_seq_per_s", "infer_seq_per_s", "forward_flops", "encode_flops", "params", "train_peak_fraction"):
            assert model[key] > 0, key
    for key in ("train", "infer", "forward_flops", "params"):
        assert row["ratio"][key] > 0
    assert row["ratio"]["train"] == row["models"]["vaelab"]["train_seq_per_s"] / row["models"]["plan"]["train_seq_per_s"]
    # The heads' targets once per patient (the vaelab row, as runs train) against per training step (targets=None).
    targets = row["targets"]
    assert targets["per_patient_train_seq_per_s"] == row["models"]["vaelab"]["train_seq_per_s"]
    for key in ("per_step_train_seq_per_s", "speedup", "head_targets_ms_per_batch"):
        assert targets[key] > 0, key
    assert targets["speedup"] == targets["per_patient_train_seq_per_s"] / targets["per_step_train_seq_per_s"]
    assert len(targets["per_step_train_samples"]) == report["settings"]["repeats"]
    assert "per_step_seq/s" in proc.stdout and "targets=None" in proc.stdout
    # vaelab's options are its defaults, read from MultiScaleConfig() and LossConfig(); the plan keeps its branch weight.
    options = report["options"]
    assert options["model"]["vaelab"] == {
        k: v for k, v in asdict(MultiScaleConfig()).items() if k not in ("latent_dim", "base_channels", "dropout")
    }
    assert options["loss"]["vaelab"] == {k: v for k, v in asdict(LossConfig()).items() if k not in ("beta", "free_bits")}
    assert options["loss"]["plan"] == {"branch_weight": 1.0} and options["model"]["plan"] == {}


def test_bench_quality_check_reports_the_spread_over_seeds(speed):
    bench = speed
    args = bench.parse_args(["--quick", "--patients", "24", "--epochs", "1", "--quality-seeds", "2"])
    args.quality, args.quality_channels, args.batch_size = True, 8, 8
    report = bench.quality_check(8, args)
    for name in bench.MODELS:
        m = report["models"][name]
        assert len(m["seeds"]) == 2 and m["val_recon_mse_sd"] >= 0
        assert m["val_recon_mse"] == pytest.approx(np.mean([s["val_recon_mse"] for s in m["seeds"]]))
    assert report["seeds"] == 2 and report["ratio"]["val_recon_mse"] > 0
    text = bench.format_report(
        {
            "header": bench.machine_header(1),
            "settings": {
                k: getattr(args, k)
                for k in ("channels", "batch_size", "infer_batch_size", "seq_len", "threads", "repeats", "steps", "warmup", "peak_gflops")
            },
            "speed": [],
            "quality": report,
        }
    )
    assert "mse_sd" in text and "mean over seeds 0-1" in text
    assert "the plan's loss: branch_weight 1.0" in text and "quantile_head True" in text
