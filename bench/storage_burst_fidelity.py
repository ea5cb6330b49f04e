"""Our EBS burst run's series against fio's own totals and a plain fio run by hand.

    .venv/bin/python bench/storage_burst_fidelity.py [--directory DIR] [--size-mib 256]
        [--seconds 10] [--rounds 2]

Ours: `storage.measure_burst` (the command line it builds, fio's bandwidth log read by
`parse_bw_log`, the series read by `analyse_burst`). Reference: the same sequential 1 MiB
write written out by hand as a fio job file, run with plain `fio --output-format=json`,
its rate read straight from fio's JSON (`write.bw_bytes`). Both on one file this script
creates, preconditions once (the benchmark's own pass) and deletes; the two sides
alternate which goes first by round. Printed per round: ours (burst, sustained, the mean
of our series), fio's own mean for our run, the reference's mean, and the ratios
series-mean / fio-mean (does the sampled series account for what fio moved?) and
ours / reference (does our command measure what a hand-written job does?). A file on a
shared disk has no burst allowance, so `fell` should be false here; nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile

import _fio_jobfile
from instbench.benchmarks import storage

MIB = 1024**2


def reference(fio: str, path: str, size: int, engine: str, seconds: int) -> float:
    """MB/s of the hand-written job, from fio's JSON."""
    text = _fio_jobfile.job_file(
        path,
        size,
        engine,
        seconds,
        "burst-by-hand",
        {"rw": "write", "bs": "1M", "iodepth": storage.SEQ_DEPTH},
        {},
    )
    doc = _fio_jobfile.run_job_file(fio, text, timeout=seconds + 600)
    return float(doc["jobs"][0]["write"]["bw_bytes"]) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--directory", default=tempfile.gettempdir())
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    fio = shutil.which("fio")
    if fio is None:
        raise SystemExit("fio is not installed")
    engine = storage.choose_engine(fio)
    size = args.size_mib * MIB
    fd, path = tempfile.mkstemp(prefix="instbench-burst-bench-", dir=args.directory)
    os.close(fd)
    try:
        storage.run_fio(
            storage.fio_command(
                fio, "precondition", path, "write", MIB, storage.SEQ_DEPTH, size, engine, None
            ),
            timeout=600,
        )
        print(f"{storage.fio_version(fio)}, {engine}, {args.size_mib} MiB file, {args.seconds} s")
        print(
            f"{'round':>5} {'burst':>9} {'sustained':>9} {'fell':>5} {'series':>9} "
            f"{'fio mean':>9} {'by hand':>9} {'series/fio':>10} {'ours/hand':>9}"
        )
        for rnd in range(args.rounds):
            sides = ["ours", "hand"] if rnd % 2 == 0 else ["hand", "ours"]
            got: dict[str, object] = {}
            for side in sides:
                if side == "ours":
                    got["ours"] = storage.measure_burst(
                        fio, engine, path, size, args.seconds, 1.0, lambda _m: None
                    )
                else:
                    got["hand"] = reference(fio, path, size, engine, args.seconds)
            ours = got["ours"]
            assert isinstance(ours, dict)
            hand = float(got["hand"])  # type: ignore[arg-type]
            series = statistics.mean(r for _, r in ours["series_mb_s"])
            print(
                f"{rnd:>5} {ours['burst_mb_s']:>9.1f} {ours['sustained_mb_s']:>9.1f} "
                f"{ours['fell']!s:>5} {series:>9.1f} {ours['mean_mb_s']:>9.1f} {hand:>9.1f} "
                f"{series / ours['mean_mb_s']:>10.3f} {ours['mean_mb_s'] / hand:>9.3f}"
            )
    finally:
        os.unlink(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
