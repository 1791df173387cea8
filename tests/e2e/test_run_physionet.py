"""data=physionet2019 end to end: a .psv directory written here -> a run whose metrics carry the probe."""

import json

import pytest
from conftest import TINY
from physionet_files import write_cohort

from vaelab.data.sources import PhysioNet2019DataConfig
from vaelab.runs.config import validate

pytestmark = pytest.mark.slow


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
