"""Out-of-core training: throughput and peak memory of the streamed path against the in-memory one.

    nice -n 5 .venv/bin/python experiments/out_of_core/bench.py            # 200,000 patients x 168 h x 7 vitals

Writes (if absent) a large Layer-2 file chunk by chunk with h5py -- never the whole array in memory;
values are vectorized numpy noise (a per-patient level, a daily rhythm, white noise, ~70 % observed),
not the realistic generator, which is far too slow for this size -- and a small file holding its
first ``--subset`` patients. Then, in fresh subprocesses taking turns (``--repeats`` each), it times
``--steps`` training steps after ``--warmup`` of the default multiscale model (base_channels 64,
batch 64, one torch thread) through ``vaelab.training.train``:

- memory: ``read_layer2`` + ``prepare_data`` on the small file, arrays in memory (the usual path:
  the heads' targets computed once per patient during setup, ``PreparedData.patients(..., with_targets=True)``);
- stream: ``Layer2Stream`` on the large file with ``--memory-mb``: the normalizer's pass over the
  whole file (timed as setup), then batches streamed in shuffled chunks. With ``--cold`` (default)
  the file is evicted from the page cache before and after that pass, so the timed steps read from
  disk as they would for a file larger than memory; a stream's batches leave the heads' targets to
  the loss, which computes them from every batch;
- extract (once): the same stream, then the posterior means of all patients encoded batch by batch
  (``encode_posterior`` on the stream, batches of 256) and written to a ``vae_latents.h5``.

Peak RSS is the worker's own high-water mark (VmHWM in /proc/self/status): ru_maxrss would also
carry the parent's peak, which Linux copies into a child at exec.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np

VITALS = ("HR", "SBP", "DBP", "MAP", "RR", "SPO2", "TEMP")
_LEVEL = np.array([84.0, 120.0, 60.0, 80.0, 18.0, 97.0, 37.0], np.float32)
_SPREAD = np.array([10.0, 13.0, 7.0, 9.0, 2.5, 1.1, 0.25], np.float32)
_DAILY = np.array([5.0, 6.0, 3.5, 4.0, 1.0, 0.3, 0.2], np.float32)
_NOISE = np.array([3.0, 5.0, 3.5, 4.0, 1.5, 0.7, 0.1], np.float32)
_OBSERVED = np.array([0.95, 0.8, 0.7, 0.8, 0.9, 0.95, 0.25], np.float32)
H5_CHUNK = 256  # patients per HDF5 chunk


def write_large(path: Path, n: int, hours: int, seed: int = 0, block: int = 4096) -> None:
    """A Layer-2 file of ``n`` patients written ``block`` at a time (atomically: temp name, then rename)."""
    rng = np.random.default_rng(seed)
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    hour = np.arange(hours, dtype=np.float32)[None, :, None]
    with h5py.File(tmp, "w") as f:
        shape, chunks = (n, hours, len(VITALS)), (min(H5_CHUNK, n), hours, len(VITALS))
        values = f.create_dataset("values", shape, np.float32, chunks=chunks)
        masks = f.create_dataset("masks", shape, np.uint8, chunks=chunks)
        for start in range(0, n, block):
            k = min(block, n - start)
            level = _LEVEL + _SPREAD * rng.standard_normal((k, 1, len(VITALS)), dtype=np.float32)
            phase = rng.uniform(0, 2 * np.pi, (k, 1, 1)).astype(np.float32)
            v = (
                level
                + _DAILY * np.cos(2 * np.pi * hour / 24 - phase)
                + _NOISE * rng.standard_normal((k, hours, len(VITALS)), dtype=np.float32)
            )
            m = rng.random((k, hours, len(VITALS)), dtype=np.float32) < _OBSERVED
            m[:, 0, 0] = True  # every patient has an observation
            values[start : start + k] = np.where(m, v, np.nan)
            masks[start : start + k] = m
        f.create_dataset("patient_index", data=np.char.encode(np.char.add("P", np.char.zfill(np.arange(n).astype(str), 7))))
        f.create_dataset("vital_index", data=np.char.encode(np.array(VITALS)))
    os.replace(tmp, path)


def write_subset(source: Path, path: Path, n: int) -> None:
    """The first ``n`` patients of ``source`` as their own Layer-2 file (what fits in memory)."""
    tmp = path.with_suffix(".tmp")
    with h5py.File(source, "r") as src, h5py.File(tmp, "w") as f:
        for name in ("values", "masks", "patient_index"):
            f.create_dataset(name, data=src[name][:n])
        f.create_dataset("vital_index", data=src["vital_index"][()])
    os.replace(tmp, path)


def evict(path: Path) -> None:
    """Drop the file's pages from the page cache (as if it had never been read)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def peak_rss_mib() -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) / 1024


class Timed:
    """The first warmup + steps batches of a batch source, over as many epochs as needed; times the
    steps after the warm-up as ``train`` consumes them (the clock stops when the next batch is asked for)."""

    def __init__(self, source, warmup: int, steps: int):
        self.source, self.warmup, self.steps, self.seconds = source, warmup, steps, None

    def __len__(self) -> int:
        return len(self.source)

    def batches(self, batch_size, rng=None):
        i = 0
        while i < self.warmup + self.steps:
            for batch in self.source.batches(batch_size, rng):
                if i == self.warmup:
                    started = time.perf_counter()
                if i == self.warmup + self.steps:
                    break
                yield batch
                i += 1
        self.seconds = time.perf_counter() - started


def worker(args) -> dict:
    """One measurement in this process: train through ``args.worker``'s path; print a JSON line."""
    import torch

    from vaelab.data.latents import write_latents
    from vaelab.data.layer2 import read_layer2
    from vaelab.data.prepare import prepare_data, split_patients
    from vaelab.data.streaming import Layer2Stream
    from vaelab.losses import LossConfig, build_loss
    from vaelab.models import build_model
    from vaelab.schedules import ScheduleConfig
    from vaelab.training import TrainConfig, encode_posterior, seed_everything, train

    torch.set_num_threads(1)
    started = time.perf_counter()
    out = {"path": args.worker}
    if args.worker == "memory":
        prepared = prepare_data(read_layer2(args.subset_path), 0.2, seed=0)
        tr, va = prepared.train_idx, prepared.val_idx[:256]
        train_source, val_source = prepared.patients(tr, with_targets=True), prepared.patients(va, with_targets=True)
        n_patients, seq_len, n_vitals = prepared.data.n_patients, prepared.data.seq_len, prepared.data.n_vitals
    else:
        if args.cold:
            evict(args.path)
        stream = Layer2Stream(args.path, args.memory_mb)
        tr, va = split_patients(stream.n_patients, 0.2, seed=0)
        normalizer = stream.fit_normalizer(tr)
        if args.cold:
            evict(args.path)
        train_source, val_source = stream.patients(tr, normalizer), stream.patients(va[:256], normalizer)
        n_patients, seq_len, n_vitals = stream.n_patients, stream.seq_len, stream.n_vitals
        out.update(chunk_size=stream.chunk_size, max_patients=stream.max_patients)
    out.update(n_patients=n_patients, setup_s=time.perf_counter() - started)
    seed_everything(0)
    model = build_model("multiscale_conv1d", n_vitals, seq_len, latent_dim=32, base_channels=64)
    if args.worker == "extract":
        t = time.perf_counter()
        mu, logvar = encode_posterior(model, stream.patients(np.arange(n_patients), normalizer))
        write_latents(args.path.with_name("vae_latents.h5"), mu, logvar, stream.patient_ids)
        out.update(seq_per_s=n_patients / (time.perf_counter() - t), latents=list(mu.shape))
    else:
        timed = Timed(train_source, args.warmup, args.steps)
        train(
            model,
            build_loss(LossConfig(), ScheduleConfig()),
            timed,
            None,
            val_source,
            None,
            TrainConfig(epochs=1, batch_size=args.batch_size, threads=1),
            progress="none",
        )
        out["seq_per_s"] = args.steps * args.batch_size / timed.seconds
    out["peak_rss_mib"] = peak_rss_mib()
    if args.worker != "memory":
        out["peak_resident_patients"] = stream.peak_resident
        stream.close()
    return out


def _speed_module():
    """benchmarks/speed.py (a script beside the package, not importable by name) as a module."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("benchmarks_speed", Path(__file__).resolve().parents[2] / "benchmarks" / "speed.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--path", type=Path, default=Path("/tmp/vaelab_out_of_core/layer2_200000x168.h5"))
    parser.add_argument("--patients", type=int, default=200_000)
    parser.add_argument("--hours", type=int, default=168)
    parser.add_argument("--subset", type=int, default=30_000, help="patients of the in-memory run")
    parser.add_argument("--memory-mb", type=float, default=512)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--cold", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--extract", action=argparse.BooleanOptionalAction, default=True, help="also time streamed latent extraction")
    parser.add_argument("--worker", choices=["memory", "stream", "extract"], help=argparse.SUPPRESS)
    parser.add_argument("--subset-path", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args)))
        return

    began = time.perf_counter()
    if not args.path.exists():
        print(f"writing {args.path} ({args.patients} x {args.hours} h x {len(VITALS)}) ...", flush=True)
        t = time.perf_counter()
        write_large(args.path, args.patients, args.hours)
        print(f"  {args.path.stat().st_size / 2**30:.2f} GiB in {time.perf_counter() - t:.0f} s", flush=True)
    with h5py.File(args.path, "r") as f:
        if f["values"].shape[:2] != (args.patients, args.hours):
            sys.exit(f"{args.path} holds {f['values'].shape}, not {args.patients} x {args.hours}: delete it or pass --path")
    subset_path = args.path.with_name(f"{args.path.stem}_first{args.subset}.h5")
    if not subset_path.exists():
        write_subset(args.path, subset_path, args.subset)

    command = [
        sys.executable,
        __file__,
        "--path",
        str(args.path),
        "--subset-path",
        str(subset_path),
        "--memory-mb",
        str(args.memory_mb),
        "--steps",
        str(args.steps),
        "--warmup",
        str(args.warmup),
        "--batch-size",
        str(args.batch_size),
        "--cold" if args.cold else "--no-cold",
    ]
    runs: dict[str, list[dict]] = {"memory": [], "stream": []}
    turns = [path for _ in range(args.repeats) for path in runs] + (["extract"] if args.extract else [])
    for path in turns:  # memory and stream take turns, so other load on the machine hits both alike
        proc = subprocess.run([*command, "--worker", path], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2])
        if proc.returncode != 0:
            sys.exit(f"{path} worker failed:\n{proc.stderr}")
        runs.setdefault(path, []).append(json.loads(proc.stdout.strip().splitlines()[-1]))
        print(f"  {path}: {runs[path][-1]}", flush=True)

    import torch  # only for the header

    cpu_model = _speed_module().cpu_model

    size = args.path.stat().st_size / 2**30
    print()
    print(
        f"out-of-core training, {time.strftime('%Y-%m-%d')}: {cpu_model()}, torch {torch.__version__}, "
        f"1 thread, load average {os.getloadavg()[0]:.1f}, total {time.perf_counter() - began:.0f} s"
    )
    print(
        f"model multiscale_conv1d base_channels 64 latent 32, training batch {args.batch_size}, {args.steps} steps after "
        f"{args.warmup} (median of {args.repeats}); extract: every patient once, batches of 256; file {args.patients} x {args.hours} h x {len(VITALS)} ({size:.2f} GiB), "
        f"data.memory_mb={args.memory_mb:g}, {'cold' if args.cold else 'warm'} page cache"
    )
    print()
    memory_rate = statistics.median(r["seq_per_s"] for r in runs["memory"])
    header = f"| {'path':<8} | {'patients':>8} | {'seq/s':>7} | {'vs memory':>9} | {'peak RSS MiB':>12} | {'setup s':>7} | {'chunk':>5} |"
    print(header)
    print("|" + "|".join("-" * (len(c)) for c in header.split("|")[1:-1]) + "|")
    for path, rows in runs.items():
        rate = statistics.median(r["seq_per_s"] for r in rows)
        ratio = f"{rate / memory_rate:.2f}" if path != "extract" else "-"
        print(
            f"| {path:<8} | {rows[0]['n_patients']:>8} | {rate:>7.0f} | {ratio:>9} | "
            f"{max(r['peak_rss_mib'] for r in rows):>12.0f} | {statistics.median(r['setup_s'] for r in rows):>7.1f} | "
            f"{rows[0].get('chunk_size', '-'):>5} |"
        )


if __name__ == "__main__":
    main()
