"""Out-of-core training: a Layer-2 file read in chunks (vaelab/data/streaming.py, vaelab/stream_run.py)."""

import json
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
from conftest import REPO

from vaelab.data.latents import read_latents
from vaelab.data.layer2 import read_layer2, write_layer2
from vaelab.data.prepare import Normalizer, split_patients
from vaelab.data.streaming import BUFFER_CHUNKS, MIB, Layer2Stream
from vaelab.data.synthetic import generate_synthetic
from vaelab.errors import VaelabError
from vaelab.evaluation import metrics as M
from vaelab.evaluation.evaluate import reconstruction_figures
from vaelab.losses import MultiScaleVAELoss
from vaelab.models import build_model
from vaelab.models.multiscale import BRANCHES
from vaelab.runs.config import validate
from vaelab.runs.pipeline import run
from vaelab.training import TrainConfig, encode_posterior, evaluate, reconstruct, seed_everything, train
from vaelab.training.checkpoint import load_checkpoint

N, T = 300, 48
# 1 MiB holds 107 patients of 48 h x 7 vitals: chunks of 21, so the file has 15 chunks, the last one short
SMALL_MB = 1


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Training here uses one thread (fast on a loaded 2-core machine); other tests keep torch's default."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def layer2_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "layer2.h5"
    write_layer2(path, generate_synthetic(N, T, seed=1))
    return path


@pytest.fixture(scope="module")
def in_memory(layer2_file):
    data = read_layer2(layer2_file)
    train_idx, val_idx = split_patients(N, 0.2, seed=0)
    normalizer = Normalizer.fit(data.values[train_idx], data.masks[train_idx], data.vitals)
    return data, normalizer, normalizer.transform(data.values, data.masks), train_idx, val_idx


def test_chunk_size_comes_from_the_memory_budget(layer2_file):
    with Layer2Stream(layer2_file, memory_mb=SMALL_MB) as stream:
        assert stream.patient_bytes == T * 7 * (4 + 1 + 24)  # float32 values, uint8 masks, working copies
        assert stream.max_patients == SMALL_MB * MIB // stream.patient_bytes == 107
        assert stream.chunk_size == 107 // (BUFFER_CHUNKS + 1) == 21 and N % stream.chunk_size != 0
        assert stream.pool_size + stream.chunk_size == stream.max_patients
    with Layer2Stream(layer2_file, memory_mb=64) as stream:  # a chunk larger than the file: one chunk
        assert stream.chunk_size > N and len(stream.chunks(np.arange(N))) == 1


@pytest.mark.parametrize("memory_mb", [SMALL_MB, 64])
def test_streamed_normalizer_equals_the_in_memory_fit(layer2_file, in_memory, memory_mb):
    _, expected, _, train_idx, _ = in_memory
    with Layer2Stream(layer2_file, memory_mb=memory_mb) as stream:
        fitted = stream.fit_normalizer(train_idx)
    assert fitted.vitals == expected.vitals
    np.testing.assert_allclose(fitted.mean, expected.mean, rtol=1e-9)
    np.testing.assert_allclose(fitted.std, expected.std, rtol=1e-9)


def test_normalizer_keeps_std_1_for_a_constant_vital_and_reads_a_vital_subset(tmp_path):
    data = generate_synthetic(60, 24, seed=2)
    data.values[..., 6] = np.where(data.masks[..., 6] > 0, 37.0, np.nan)  # TEMP constant
    write_layer2(tmp_path / "c.h5", data)
    index = np.arange(0, 60, 2)
    expected = Normalizer.fit(data.values[index][..., [6, 0]], data.masks[index][..., [6, 0]], ("TEMP", "HR"))
    with Layer2Stream(tmp_path / "c.h5", memory_mb=0.2, vitals=["TEMP", "HR"]) as stream:
        fitted = stream.fit_normalizer(index)
        assert stream.vitals == ("TEMP", "HR") and stream.n_vitals == 2
    assert fitted.std[0] == 1.0 and fitted.mean[0] == 37.0
    np.testing.assert_allclose(fitted.std, expected.std, rtol=1e-9)


def test_batches_hold_the_in_memory_tensors_in_file_order_without_rng(layer2_file, in_memory):
    data, normalizer, x, _, val_idx = in_memory
    with Layer2Stream(layer2_file, memory_mb=SMALL_MB) as stream:
        batches = list(stream.patients(val_idx, normalizer).indexed_batches(16))
    index = np.concatenate([b[0] for b in batches])
    np.testing.assert_array_equal(index, val_idx)  # file order, every validation patient once
    assert [len(b[0]) for b in batches[:-1]] == [16] * (len(batches) - 1)
    for rows, xb, mb in batches:
        assert xb.dtype == mb.dtype == np.float32
        np.testing.assert_allclose(xb, x[rows], rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(mb, data.masks[rows])


def _epochs(stream, normalizer, index, seed, n_epochs=3, batch_size=16):
    rng = np.random.default_rng(seed)
    source = stream.patients(index, normalizer)
    return [np.concatenate([b[0] for b in source.indexed_batches(batch_size, rng)]) for _ in range(n_epochs)]


def test_every_training_patient_once_per_epoch_in_a_seeded_order(layer2_file, in_memory):
    _, normalizer, _, train_idx, _ = in_memory
    with Layer2Stream(layer2_file, memory_mb=SMALL_MB) as stream:
        a, b, other = (
            _epochs(stream, normalizer, train_idx, 7),
            _epochs(stream, normalizer, train_idx, 7),
            _epochs(stream, normalizer, train_idx, 8),
        )
    for epoch in a:
        assert len(epoch) == len(train_idx) and np.array_equal(np.sort(epoch), train_idx)
    assert not np.array_equal(a[0], a[1]) and not np.array_equal(a[1], a[2])  # a new order every epoch
    assert all(np.array_equal(x, y) for x, y in zip(a, b))  # reproducible for a seed
    assert not np.array_equal(a[0], other[0])


def test_shuffles_the_chunk_order_and_within_the_pool(layer2_file, in_memory):
    _, normalizer, _, train_idx, _ = in_memory
    with Layer2Stream(layer2_file, memory_mb=SMALL_MB) as stream:
        chunk_of = lambda rows: rows // stream.chunk_size  # noqa: E731
        rows = [len(r) for *_, r in stream.chunks(train_idx)]
        pool_chunks = stream.pool_size // min(rows[:-1]) + 1  # most chunks in the pool at once (+1: the short last one)
        epochs = [epoch for seed in range(4) for epoch in _epochs(stream, normalizer, train_idx, seed, 2)]
    firsts = [chunk_of(epoch[:16]) for epoch in epochs]
    # chunk level: the first batch comes from a random few chunks, not always from the file's start
    assert len({tuple(sorted(set(f))) for f in firsts}) > 1
    assert any(0 not in f for f in firsts)
    # locality: a batch mixes only the few chunks held in the pool (contiguous reads), but more than one
    assert all(2 <= len(set(f)) <= pool_chunks for f in firsts) and len(rows) > pool_chunks
    # within the pool: patients of one chunk do not come out in file order
    same_chunk = epochs[0][chunk_of(epochs[0]) == chunk_of(epochs[0][0])]
    assert len(same_chunk) > 3 and not np.array_equal(same_chunk, np.sort(same_chunk))


@pytest.mark.parametrize("memory_mb", [0.6, SMALL_MB, 2.5])
def test_resident_patients_never_exceed_the_budget(layer2_file, in_memory, memory_mb):
    _, _, _, train_idx, val_idx = in_memory
    with Layer2Stream(layer2_file, memory_mb=memory_mb) as stream:
        normalizer = stream.fit_normalizer(train_idx)
        for index, rng in ((train_idx, np.random.default_rng(0)), (val_idx, None), (np.arange(N), None)):
            assert sum(len(b[0]) for b in stream.patients(index, normalizer).indexed_batches(8, rng)) == len(index)
        assert stream.chunk_size <= stream.peak_resident <= stream.max_patients < N
        assert stream.max_patients == int(memory_mb * MIB // stream.patient_bytes)


def test_a_batch_larger_than_the_budget_is_refused_for_training_and_shrunk_for_evaluation(layer2_file, in_memory):
    _, normalizer, _, train_idx, val_idx = in_memory
    with Layer2Stream(layer2_file, memory_mb=SMALL_MB) as stream:
        too_big = stream.max_batch_size + 1
        with pytest.raises(
            VaelabError, match=r"layer2.h5: a batch of \d+ patients does not fit data.memory_mb=1 .*lower trainer.batch_size"
        ):
            next(stream.patients(train_idx, normalizer).batches(too_big, np.random.default_rng(0)))
        sizes = [len(x) for x, _ in stream.patients(np.arange(N), normalizer).batches(256)]
        assert sum(sizes) == N and max(sizes) == stream.max_batch_size
        assert stream.peak_resident <= stream.max_patients


def test_streamed_evaluation_encoding_and_reconstruction_match_in_memory(layer2_file, in_memory):
    data, normalizer, x, _, val_idx = in_memory
    seed_everything(0)
    model = build_model("multiscale_conv1d", 7, T, latent_dim=4, base_channels=8).eval()
    loss = MultiScaleVAELoss()
    with Layer2Stream(layer2_file, memory_mb=SMALL_MB) as stream:
        val = stream.patients(val_idx, normalizer)
        streamed = evaluate(model, loss, val)
        mu, logvar = encode_posterior(model, stream.patients(np.arange(N), normalizer))
        figures = reconstruction_figures(model, val, normalizer)
    expected = evaluate(model, loss, x[val_idx], data.masks[val_idx])
    assert streamed == pytest.approx(expected, rel=1e-5)
    mu_mem, logvar_mem = encode_posterior(model, x, data.masks)
    np.testing.assert_allclose(mu, mu_mem, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(logvar, logvar_mem, rtol=1e-4, atol=1e-5)
    recon, branches = reconstruct(model, x[val_idx], data.masks[val_idx])
    assert figures["recon_mse"] == pytest.approx(M.masked_mse(recon, x[val_idx], data.masks[val_idx]), rel=1e-6)
    per_vital = M.masked_mse_per_vital(normalizer.inverse(recon), data.values[val_idx], data.masks[val_idx])
    assert list(figures["recon_mse_per_vital"].values()) == pytest.approx(per_vital.tolist(), rel=1e-4)
    assert list(figures["branch_recon_mse"].values()) == pytest.approx(M.branch_mse(branches, x[val_idx], data.masks[val_idx]), rel=1e-6)
    assert figures["recon_mse_band"] == pytest.approx(M.band_mse(recon, x[val_idx], data.masks[val_idx]), rel=1e-6)
    assert figures["recon_band_r2"] == pytest.approx(M.band_r2(recon, x[val_idx], data.masks[val_idx]), rel=1e-6)
    for name, part in zip(BRANCHES, branches):
        assert figures["branch_recon_mse_band"][name] == pytest.approx(M.band_mse(part, x[val_idx], data.masks[val_idx]), rel=1e-6)


def test_streamed_training_is_deterministic_and_resumes_exactly(layer2_file, tmp_path):
    def fit(epochs, state_path=None):
        with Layer2Stream(layer2_file, memory_mb=SMALL_MB) as stream:
            train_idx, val_idx = split_patients(N, 0.2, seed=0)
            normalizer = stream.fit_normalizer(train_idx)
            seed_everything(3)
            model = build_model("multiscale_conv1d", 7, T, latent_dim=2, base_channels=4)
            loss = MultiScaleVAELoss(warmup_epochs=1, cycle_epochs=2)
            config = TrainConfig(epochs=epochs, batch_size=32, patience=10, threads=1)
            result = train(
                model,
                loss,
                stream.patients(train_idx, normalizer),
                None,
                stream.patients(val_idx, normalizer),
                None,
                config,
                seed=3,
                state_path=state_path,
                fingerprint="f",
            )
        return [{k: v for k, v in row.items() if k != "seconds"} for row in result.history]

    straight = fit(2)
    fit(1, tmp_path / "state.pt")
    # resumed after epoch 1 (with the shuffling generator's state): the same epochs as an uninterrupted run
    assert fit(2, tmp_path / "state.pt") == straight and len(straight) == 2


def _bad_file(tmp_path, name, change):
    data = generate_synthetic(40, 24, seed=0)
    values, masks = np.where(data.masks > 0, data.values, np.nan).astype(np.float32), data.masks.astype(np.uint8)
    datasets = {
        "values": values,
        "masks": masks,
        "patient_index": np.char.encode(data.patient_ids.astype(str)),
        "vital_index": np.char.encode(np.array(data.vitals)),
    }
    change(datasets)
    path = tmp_path / name
    with h5py.File(path, "w") as f:
        for key, arr in datasets.items():
            if arr is not None:
                f.create_dataset(key, data=arr)
    return path, [str(p) for p in data.patient_ids]


def _set(key, value):
    return lambda d: d.update({key: value})


def _nan_observed(d):  # a NaN where the mask says observed, in a late chunk: found by the streaming pass
    d["values"][33, 5, 0], d["masks"][33, 5, 0] = np.nan, 1


def _inf(d):
    d["values"][37, 1, 2], d["masks"][37, 1, 2] = np.inf, 1


def _mask_2(d):
    d["masks"][21, 0, 1] = 2


def _no_observation(d):
    d["masks"][29] = 0
    d["values"][29] = np.nan


@pytest.mark.parametrize(
    "name, change, message",
    [
        ("no_values.h5", _set("values", None), "dataset 'values' is missing"),
        (
            "masks_shape.h5",
            lambda d: d.update(masks=d["masks"][:, :, :6]),
            "dataset 'masks' has shape (40, 24, 6) but 'values' has (40, 24, 7)",
        ),
        ("rank.h5", lambda d: d.update(values=d["values"][:, :, 0], masks=d["masks"][:, :, 0]), "dataset 'values' must be 3-D"),
        (
            "empty.h5",
            lambda d: d.update(values=d["values"][:0], masks=d["masks"][:0], patient_index=d["patient_index"][:0]),
            "dataset 'values' holds zero patients",
        ),
        (
            "text.h5",
            lambda d: d.update(values=d["patient_index"][:, None, None].repeat(24, 1).repeat(7, 2)),
            "dataset 'values' is not numeric",
        ),
        (
            "ids.h5",
            lambda d: d.update(patient_index=d["patient_index"][:39]),
            "dataset 'patient_index' has 39 entries but 'values' has 40 patients",
        ),
        (
            "vitals.h5",
            lambda d: d.update(vital_index=d["vital_index"][:5]),
            "dataset 'vital_index' has 5 entries but 'values' has 7 vitals",
        ),
        (
            "nan.h5",
            _nan_observed,
            "dataset 'values' has 1 NaN entry where 'masks' says observed in patients 32-39, first at patient '{33}', hour 5, vital 'HR'",
        ),
        ("inf.h5", _inf, "dataset 'values' has 1 infinite entry in patients 32-39, first at patient '{37}', hour 1, vital 'DBP'"),
        ("mask2.h5", _mask_2, "dataset 'masks' must hold only 0 and 1 but has 2 at patient '{21}', hour 0, vital 'SBP'"),
        ("unobserved.h5", _no_observation, "patient '{29}' has no observation at all"),
    ],
)
def test_bad_files_fail_with_one_line_naming_the_file_and_dataset(tmp_path, name, change, message):
    path, ids = _bad_file(tmp_path, name, change)
    message = message.replace("{33}", ids[33]).replace("{37}", ids[37]).replace("{21}", ids[21]).replace("{29}", ids[29])
    with pytest.raises(VaelabError) as err:
        with Layer2Stream(path, memory_mb=0.2) as stream:  # 0.2 MiB: chunks of 8 patients
            assert stream.chunk_size == 8
            stream.fit_normalizer(np.arange(0, 40, 2))  # the pass reads (and checks) every patient, not only these
    text = str(err.value)
    assert text == f"{path}: {message}" or text.startswith(f"{path}: {message}"), text
    assert "\n" not in text


def test_files_and_budgets_that_cannot_stream_are_named(tmp_path, layer2_file):
    for path, message in ((tmp_path / "nope.h5", "file not found"), (tmp_path / "zero.h5", "not an HDF5 file")):
        if path.name == "zero.h5":
            path.write_bytes(b"")
        with pytest.raises(VaelabError, match=f"^{path}: {message}$"):
            Layer2Stream(path)
    with pytest.raises(VaelabError, match=r"layer2.h5: data.memory_mb=0.01 holds 1 patients of 48 h x 7 vitals .* raise data.memory_mb"):
        Layer2Stream(layer2_file, memory_mb=0.01)
    with pytest.raises(VaelabError, match=r"layer2.h5: vital 'GLUCOSE' \(data.vitals\) is not in the file's vital_index"):
        Layer2Stream(layer2_file, vitals=["HR", "GLUCOSE"])


def test_memory_mb_is_range_checked(compose_config):
    with pytest.raises(VaelabError, match="^config data.memory_mb: must be >= 1, got 0$"):
        validate(compose_config(["data=h5", "data.path=x.h5", "data.stream=true", "data.memory_mb=0"]))
    experiment = validate(compose_config(["data=h5", "data.path=x.h5"]))
    assert experiment.data.stream is False and experiment.data.memory_mb == 512


def test_a_streamed_run_that_fails_on_its_input_records_it(compose_config, tmp_path):
    path, _ = _bad_file(tmp_path, "inf.h5", _inf)
    experiment = validate(compose_config(["data=h5", f"data.path={path}", "data.stream=true", "trainer=debug", "trainer.batch_size=8"]))
    with pytest.raises(VaelabError, match="infinite entry"):
        run(experiment, tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["status"] == "failed" and metrics["streamed"] is True and "infinite entry" in metrics["error"]


# Peak RSS of a real streamed training, against loading the same file. The peak is the process's own
# high-water mark (VmHWM), reset to the current RSS after the warm-up (imports, model, training and
# encoding steps), so the growth is what the data costs. Not ru_maxrss: at exec Linux carries the
# parent's peak into it, and pytest's is hundreds of MiB.
RSS_SCRIPT = textwrap.dedent("""
    import ctypes, json, sys
    import numpy as np, torch
    from vaelab.data.prepare import prepare_data
    from vaelab.losses import MultiScaleVAELoss
    from vaelab.data.layer2 import read_layer2
    from vaelab.data.streaming import Layer2Stream
    from vaelab.data.prepare import split_patients
    from vaelab.models import build_model
    from vaelab.training import TrainConfig, encode_posterior, train
    path, mode, memory_mb = sys.argv[1], sys.argv[2], float(sys.argv[3])
    def peak_kib():
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM"))
    torch.set_num_threads(1)
    model = build_model("multiscale_conv1d", 7, 168, latent_dim=2, base_channels=4)
    loss = MultiScaleVAELoss()
    def warm_up():  # the model's own working memory: one training step and one encoding
        warm = np.zeros((256, 168, 7), np.float32)  # encoding and validation batches are 256
        train(model, loss, warm, warm + 1, warm[:8], warm[:8] + 1, TrainConfig(epochs=1, batch_size=64, threads=1))
        encode_posterior(model, warm, warm + 1)
    warm_up()
    ctypes.CDLL(None).malloc_trim(0)  # glibc: return freed heap (import-time garbage) to the system
    warm_up()  # ... and take the model's working memory back: what is left is the data's cost
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # reset the peak RSS to the current RSS
    base = peak_kib()
    if mode == "stream":
        with Layer2Stream(path, memory_mb) as s:
            tr, va = split_patients(s.n_patients, 0.2, 0)
            norm = s.fit_normalizer(tr)
            train(model, loss, s.patients(tr, norm), None, s.patients(va, norm), None, TrainConfig(epochs=1, batch_size=64, threads=1))
            mu, _ = encode_posterior(model, s.patients(np.arange(s.n_patients), norm))
            assert mu.shape[0] == s.n_patients and s.peak_resident <= s.max_patients
    else:
        p = prepare_data(read_layer2(path))
        x_train = p.x[p.train_idx]
    grown = peak_kib() - base
    print(json.dumps({"grown_mib": grown / 1024}))
""")


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads and resets the peak RSS through /proc/self")
def test_streamed_training_peak_rss_stays_within_the_budget(tmp_path):
    # slack: the model's training adds ~12 MiB over its warm-up by itself (allocator, autograd); a stream
    # holding the whole training split would add 45 MiB, loading the file adds ~145 MiB
    n, memory_mb, slack_mib = 6000, 4, 24
    rng = np.random.default_rng(0)
    path = tmp_path / "big.h5"  # 6000 x 168 h x 7: 28 MiB per float32 copy; loading it grows RSS by far more than the bound
    with h5py.File(path, "w") as f:
        f.create_dataset("values", data=rng.normal(80, 10, (n, 168, 7)).astype(np.float32))
        f.create_dataset("masks", data=(rng.random((n, 168, 7)) < 0.7).astype(np.uint8))
        f["values"][:, 0, 0], f["masks"][:, 0, 0] = 80.0, 1  # everyone has an observation
        f.create_dataset("patient_index", data=np.char.encode(np.array([f"P{i:05d}" for i in range(n)])))
        f.create_dataset("vital_index", data=np.char.encode(np.array(["HR", "SBP", "DBP", "MAP", "RR", "SPO2", "TEMP"])))

    def grown(mode):
        proc = subprocess.run(
            [sys.executable, "-c", RSS_SCRIPT, str(path), mode, str(memory_mb)], capture_output=True, text=True, timeout=300, cwd=REPO
        )
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])["grown_mib"]

    bound = memory_mb + slack_mib
    in_memory, streamed = grown("memory"), grown("stream")
    assert in_memory > 3 * bound, in_memory  # the check can fail: loading the file breaks it by far
    assert streamed < bound, streamed


@pytest.mark.slow
def test_cli_streamed_run_writes_metrics_and_latents_for_every_patient(run_cli, tmp_path, layer2_file):
    proc = run_cli(
        "data=h5",
        f"data.path={layer2_file}",
        "data.stream=true",
        f"data.memory_mb={SMALL_MB}",
        "trainer=debug",
        "trainer.batch_size=16",
        "trainer.threads=1",
        "model.latent_dim=4",
        "model.base_channels=8",
        "quiet=true",
    )
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "run"
    assert {"metrics.json", "history.csv", "vae_latents.h5", "checkpoint.pt", "train_state.pt", "plots"} <= {p.name for p in run.iterdir()}
    assert len(list((run / "plots").iterdir())) == 4 and not list(run.rglob("*.tmp"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["status"] == "ok" and metrics["streamed"] is True and "factor_r2" in metrics["skipped"]
    assert metrics["n_patients"] == N and metrics["n_val"] == 60 and metrics["chunk_size"] == 21
    assert 0 < metrics["stream_peak_patients"] <= metrics["stream_max_patients"] < N
    assert {"kl", "active_units", "latent_spread", "recon_mse", "recon_mse_per_vital", "branch_recon_mse", "mi"} <= set(metrics)
    # band figures summed over evaluation batches of at most chunk_size patients still add up to the MSE
    assert sum(metrics["recon_mse_band"].values()) == pytest.approx(metrics["recon_mse"], rel=1e-6)
    assert set(metrics["branch_recon_mse_band"]) == set(BRANCHES) and "recon_mse_band" not in metrics["skipped"]
    assert len(pd.read_csv(run / "history.csv")) == 3

    latents = read_latents(run / "vae_latents.h5")
    data = read_layer2(layer2_file)
    assert latents["mu"].shape == (N, 4) and list(latents["patient_ids"]) == list(data.patient_ids)
    model, normalizer, _ = load_checkpoint(run / "checkpoint.pt")  # the streamed normalizer, and the order of patients
    again, _ = encode_posterior(model, normalizer.transform(data.values, data.masks), data.masks)
    np.testing.assert_allclose(again, latents["mu"], rtol=1e-4, atol=1e-5)
    torch.load(run / "checkpoint.pt", weights_only=True)
