"""The per-process cache of prepared data that a sweep's trials share (vaelab.run.prepared_data)."""

import numpy as np
import pytest

from vaelab.data.layer2 import write_layer2
from vaelab.data.synthetic import generate_synthetic
from vaelab.runs import pipeline as R
from vaelab.runs.config import validate


@pytest.fixture(autouse=True)
def empty_cache():
    R._PREPARED.clear()
    R._PCA_R2.clear()
    yield
    R._PREPARED.clear()
    R._PCA_R2.clear()


def test_same_data_config_is_prepared_once_and_read_only(compose_config):
    experiment = validate(compose_config(["data.n_patients=30", "data.seq_len=48"]))
    first, cached_first = R.prepared_data(experiment)
    again, cached_again = R.prepared_data(validate(compose_config(["data.n_patients=30", "data.seq_len=48", "loss.beta=2"])))
    assert (cached_first, cached_again) == (False, True) and again is first  # loss settings do not touch the data
    with pytest.raises(ValueError, match="read-only"):
        first.x[0, 0, 0] = 1.0
    other, cached_other = R.prepared_data(validate(compose_config(["data.n_patients=30", "data.seq_len=48", "seed=1"])))
    assert not cached_other and not np.array_equal(other.train_idx, first.train_idx)  # another split


def test_cache_keeps_a_bounded_number_of_data_sets(compose_config):
    for n in (30, 31, 32):
        R.prepared_data(validate(compose_config([f"data.n_patients={n}", "data.seq_len=48"])))
    assert len(R._PREPARED) == R.CACHE_SIZE
    _, cached = R.prepared_data(validate(compose_config(["data.n_patients=30", "data.seq_len=48"])))
    assert not cached  # the oldest was evicted


def test_a_rewritten_file_is_read_again(compose_config, tmp_path):
    path = tmp_path / "layer2.h5"
    write_layer2(path, generate_synthetic(n_patients=20, seq_len=48, seed=0))
    experiment = validate(compose_config(["data=h5", f"data.path={path}"]))
    first, _ = R.prepared_data(experiment)
    write_layer2(path, generate_synthetic(n_patients=25, seq_len=48, seed=1))
    second, cached = R.prepared_data(experiment)
    assert not cached and second.data.n_patients == 25 and first.data.n_patients == 20
