"""data=physionet2019 end to end: a .psv directory written here -> a run whose metrics carry the probe."""

import json

import numpy as np
import pytest
from conftest import TINY
from physionet_files import psv_text, vitals

from vaelab.data.sources import PhysioNet2019DataConfig
from vaelab.runs.config import validate

pytestmark = pytest.mark.slow


def write_cohort(root, n=40, hours=30, seed=0):
    """n stays; a third become septic, with a higher heart rate from hour 10 (a learnable signal)."""
    rng = np.random.default_rng(seed)
    root.mkdir()
    for i in range(n):
        septic = i % 3 == 0
        rows = []
        for h in range(1, hours + 1):
            hr = 80 + rng.normal(0, 5) + (25 if septic and h > 10 else 0)
            rows.append({**vitals(hr=round(hr, 1), resp=18 + int(rng.integers(-2, 3))), "ICULOS": h, "SepsisLabel": int(septic and h > 12)})
        (root / f"p{i:06d}.psv").write_text(psv_text(rows, age=40 + i))
    return root


def test_compose_physionet2019(compose_config):
    e = validate(compose_config(["data=physionet2019", "data.source=/x.tar.gz", "data.seq_len=72"]))
    assert isinstance(e.data, PhysioNet2019DataConfig) and (e.data.seq_len, e.data.min_hours) == (72, 0)


def test_a_physionet_run_reports_the_probe_beside_the_summary_statistics_baseline(run_cli, tmp_path):
    source = write_cohort(tmp_path / "psv")
    proc = run_cli(
        "data=physionet2019",
        f"data.source={source}",
        "data.seq_len=24",
        f"data.cache_dir={tmp_path / 'cache'}",
        *[o for o in TINY if not o.startswith("data.")],
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["n_patients"] == 40 and metrics["seq_len"] == 24
    assert metrics["probe_label"] == "sepsis" and metrics["probe_positive_rate"] == pytest.approx(14 / 40)
    for key in ("probe_auroc", "probe_auprc", "probe_baseline_auroc", "probe_baseline_auprc"):
        assert 0.0 <= metrics[key] <= 1.0
    assert metrics["probe_baseline_auroc"] > 0.9  # mean HR separates the septic stays
    assert "factor_r2" not in metrics  # real data has no true factors
    assert list((tmp_path / "cache").glob("*.h5"))  # imported once, cached
