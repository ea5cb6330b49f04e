"""Our storage figures against a plain fio run by hand, same jobs, same file, same run.

    .venv/bin/python bench/storage_fidelity.py [--directory DIR] [--size-mib 256]
        [--runtime-s 3] [--rounds 3]

Ours: each of the benchmark's six jobs through instbench's code (the fio command line
`storage.fio_command` builds, run and parsed by `storage.run_fio` / `storage.parse_job`).
Reference: the same job written out by hand as a fio job file (INI), run with plain
`fio --output-format=json JOBFILE`, the numbers read straight from fio's JSON. Both on one
file that this script creates and deletes, preconditioned once by the benchmark's own
pass before anything is measured; each job runs back to back on both sides, and which
side goes first alternates by job and round. Prints, per job, the median over rounds of ours and the
reference (IOPS, MB/s, p50 and p99 completion latency) and the ratio ours/reference.
Nothing is asserted: a shared machine's disk is noisy, and the ratios show how much.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
from pathlib import Path

import _fio_jobfile
from instbench.benchmarks import storage

MIB = 1024**2


def reference(
    path: str, size: int, runtime: int, engine: str, job: tuple[str, str, int, int]
) -> dict[str, float]:
    """One job by hand: a job file and plain fio; figures straight from its JSON."""
    name, rw, bs, depth = job
    text = _fio_jobfile.job_file(
        path,
        size,
        engine,
        runtime,
        name,
        {"randrepeat": 0, "norandommap": 1, "percentile_list": "50:99"},
        {"rw": rw, "bs": bs, "iodepth": depth},
    )
    data = _fio_jobfile.run_job_file("fio", text)
    side = data["jobs"][0]["write" if "write" in rw else "read"]
    pct = side["clat_ns"]["percentile"]
    return {
        "iops": side["iops"],
        "mb_s": side["bw_bytes"] / 1e6,
        "p50_us": pct["50.000000"] / 1000,
        "p99_us": pct["99.000000"] / 1000,
    }


def ours(
    path: str, size: int, runtime: int, engine: str, job: tuple[str, str, int, int]
) -> dict[str, float]:
    """One job through instbench's code: the command the agent builds, its parser."""
    name, rw, bs, depth = job
    fio = shutil.which("fio") or "fio"
    doc = storage.run_fio(
        storage.fio_command(fio, name, path, rw, bs, depth, size, engine, runtime), timeout=600
    )
    j = storage.parse_job(doc, rw)
    return {
        "iops": j["iops"],
        "mb_s": j["bw_mb_s"],
        "p50_us": j["clat_us"]["p50"],
        "p99_us": j["clat_us"]["p99"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", default=tempfile.gettempdir())
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runtime-s", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("fio") is None:
        raise SystemExit("needs fio (apt-get install fio)")
    fio = shutil.which("fio") or "fio"
    engine = storage.choose_engine(fio)
    size = args.size_mib * MIB
    fd, path = tempfile.mkstemp(prefix="instbench-fidelity-", dir=args.directory)
    os.close(fd)
    print(
        f"{storage.fio_version(fio)}, engine {engine}, file {path}, {args.size_mib} MiB, "
        f"{args.runtime_s} s per job, {args.rounds} rounds"
    )
    ours_rounds: list[dict[str, dict[str, float]]] = []
    ref_rounds: list[dict[str, dict[str, float]]] = []
    try:
        # Written once, by the benchmark's own preconditioning, before anything is measured.
        storage.measure_target(
            fio, engine, storage.Target(path, "file", "file"), size, 1, lambda _m: None
        )
        for r in range(args.rounds):
            mine: dict[str, dict[str, float]] = {}
            theirs: dict[str, dict[str, float]] = {}
            for i, job in enumerate(storage.JOBS):
                # Each job back to back on both sides; who goes first alternates.
                if (r + i) % 2 == 0:
                    mine[job[0]] = ours(path, size, args.runtime_s, engine, job)
                    theirs[job[0]] = reference(path, size, args.runtime_s, engine, job)
                else:
                    theirs[job[0]] = reference(path, size, args.runtime_s, engine, job)
                    mine[job[0]] = ours(path, size, args.runtime_s, engine, job)
            ours_rounds.append(mine)
            ref_rounds.append(theirs)
    finally:
        Path(path).unlink(missing_ok=True)
    print(f"{'job':18} {'metric':7} {'ours':>12} {'reference':>12} {'ours/ref':>9}")
    for name, *_ in storage.JOBS:
        for metric in ("iops", "mb_s", "p50_us", "p99_us"):
            a = statistics.median(o[name][metric] for o in ours_rounds)
            b = statistics.median(o[name][metric] for o in ref_rounds)
            ratios = [
                o[name][metric] / f[name][metric]
                for o, f in zip(ours_rounds, ref_rounds, strict=True)
            ]
            print(f"{name:18} {metric:7} {a:12.1f} {b:12.1f} {statistics.median(ratios):9.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
