"""experiments/physionet2019/vital_scales.py as a real subprocess on a Layer-2 file written here with
known distributions: a normal vital's std / IQR is 1 / 1.349, a heavy-tailed one counts its tail, a
constant one has no IQR ratio, and a missing file is one line, exit 2."""

import subprocess
import sys

import numpy as np
from conftest import REPO

from vaelab.data.layer2 import Layer2Data, write_layer2

SCRIPT = REPO / "experiments" / "physionet2019" / "vital_scales.py"


def run(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True, cwd=REPO)


def test_scales_and_tails_of_known_distributions(tmp_path):
    rng = np.random.default_rng(0)
    n, t = 400, 50
    normal = rng.normal(80.0, 10.0, (n, t))
    heavy = rng.standard_t(2, (n, t)) + 37.0
    constant = np.full((n, t), 5.0)
    values = np.stack([normal, heavy, constant], axis=-1).astype(np.float32)
    masks = (rng.random(values.shape) < 0.7).astype(np.float32)
    values[masks == 0] = np.nan
    path = tmp_path / "layer2.h5"
    write_layer2(path, Layer2Data(values, masks, np.array([f"p{i}" for i in range(n)]), ("NORMAL", "HEAVY", "CONST")))

    done = run(path)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines()[1:]}
    assert set(rows) == {"NORMAL", "HEAVY", "CONST"}
    observed = {name: int(masks[..., k].sum()) for k, name in enumerate(("NORMAL", "HEAVY", "CONST"))}
    assert {name: int(row[1]) for name, row in rows.items()} == observed
    assert abs(float(rows["NORMAL"][6]) - 1 / 1.349) < 0.02  # std / IQR of a normal
    assert float(rows["NORMAL"][8].rstrip("%")) < 0.05  # |z| > 4: 0.006 % for a normal
    assert float(rows["HEAVY"][8].rstrip("%")) > 10 * float(rows["NORMAL"][8].rstrip("%")) + 0.05
    assert rows["CONST"][6] == "-" and float(rows["CONST"][3]) == 1.0  # no spread: std 1, as the model's normalizer


def test_a_missing_file_is_one_line(tmp_path):
    done = run(tmp_path / "missing.h5")
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and "missing.h5" in done.stderr
