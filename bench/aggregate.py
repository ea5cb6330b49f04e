"""Aggregation throughput: ingest + aggregation + publication of N result documents.

Generates N valid result documents (tests/factories.py; 20 instance types, normal
bandwidths, 10 trials per kernel) in a mirror under a temporary directory, then times, each
in its own child process of this one:

  baseline   plain Python: json.load every file + the statistics module computing the same
             per type x kernel x thread mode medians, means and standard deviations
             (no schema validation, no plausibility, no hashing, no output files); run
             twice, and the faster run (page cache warm) is the one compared with;
  cold       instbench with an empty ingest cache and an empty output: every file
             validated (schema, plausibility, sha256), tidy rows loaded into DuckDB, the
             whole publication written (every tidy partition);
  warm       instbench again on the same mirror and output, nothing new: the walk reads
             no directory, and since the previous publication's sourceDigest is the one
             this one would have and every one of its files hashes to what its index
             recorded, it is left as it is (publish.py);
  after sync N/100 new documents (later measurements, as a sync brings) are added, then
             instbench again: the new files validated, the tidy partitions of the months
             they fall in written again (the others linked after a hash check), the
             windows from the first changed one computed and rendered.

Every instbench run passes --memory-limit (default 1GB) to DuckDB, as `instbench publish
--memory-limit` does. Prints a table: seconds, the ratio of the baseline to each, the tidy
partitions written, and each child's peak RSS: its own (resource.getrusage) and that of
it and its validation workers together (sampled from /proc every 50 ms).

    .venv/bin/python bench/aggregate.py               # 100,000 documents
    .venv/bin/python bench/aggregate.py -n 5000       # while developing
    .venv/bin/python bench/aggregate.py --keep DIR    # reuse a generated mirror
    .venv/bin/python bench/aggregate.py -n 1000000 --keep /somewhere/outside/the/repo
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TYPES = [
    f"{family}.{size}"
    for family in ("m7i", "c7g", "m7a", "r7i", "c7i")
    for size in ("large", "xlarge", "2xlarge", "4xlarge")
]


def _generate_chunk(args: tuple[str, int, int, str]) -> int:
    from tests.factories import raw_key_of, result_document, to_bytes

    from instbench.storage.local import LocalStore

    root, start, stop, run = args
    store = LocalStore(Path(root))
    for i in range(start, stop):
        rng = random.Random(i)
        itype = TYPES[i % len(TYPES)]
        base = 12.0 * (1 + TYPES.index(itype) % 4) + 3 * (TYPES.index(itype) // 4)
        doc = result_document(
            itype,
            bandwidth_gbps=max(1.0, rng.gauss(base, base * 0.04)),
            sample=i,
            run_id=f"{run}-{i // 1000}",
            timestamp=datetime(2025, 1, 6, tzinfo=UTC) + timedelta(minutes=7 * i),
            seed=i,
        )
        store.put_new(raw_key_of(doc), to_bytes(doc))
    return stop - start


def generate(root: Path, n: int, start: int = 0, run: str = "bench") -> None:
    from concurrent.futures import ProcessPoolExecutor

    step = 1000
    chunks = [(str(root), s, min(start + n, s + step), run) for s in range(start, start + n, step)]
    with ProcessPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = 0
        for count in pool.map(_generate_chunk, chunks):
            done += count
            print(f"\rgenerated {done}/{n}", end="", file=sys.stderr)
    print(file=sys.stderr)


def _peak_mib() -> dict[str, float]:
    scale = 1024 if sys.platform != "darwin" else 1024 * 1024  # ru_maxrss: KiB on Linux
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / scale / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / scale / 1024
    return {"peak_mib": round(own, 1), "peak_workers_mib": round(kids, 1)}


class TreeSampler:
    """Peak resident memory of this process and all its descendants together, sampled
    from /proc every 50 ms: ingest validates in forkserver workers, which are not this
    process's children, so getrusage(RUSAGE_CHILDREN) does not see them."""

    def __init__(self) -> None:
        import threading

        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> TreeSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            self.peak = max(self.peak, self._tree_rss(page))
            if self._stop.wait(0.05):
                return

    @staticmethod
    def _tree_rss(page: int) -> int:
        parents: dict[int, int] = {}
        rss: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry.name}/statm", encoding="ascii") as fh:
                    rss[int(entry.name)] = int(fh.read().split()[1]) * page
            except (OSError, IndexError, ValueError):
                continue
            parents[int(entry.name)] = int(fields[1])
        tree = {os.getpid()}
        grew = True
        while grew:
            new = {pid for pid, ppid in parents.items() if ppid in tree} - tree
            grew = bool(new)
            tree |= new
        return sum(rss.get(pid, 0) for pid in tree)


def partition_files(output: Path) -> dict[str, tuple[int, int, str]]:
    """Every partition file of a publication (tidy and monthly aggregates) -> (inode,
    mtime_ns, sha256): a partition rewritten by the next publication gets a new inode and
    mtime, one linked from the previous publication keeps both (and its bytes)."""
    import hashlib

    found: dict[str, tuple[int, int, str]] = {}
    for table in ("tidy", "aggregates"):
        for path in sorted((output / "latest" / table).rglob("*.parquet")):
            st = path.stat()
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 24):
                    digest.update(chunk)
            found[str(path.relative_to(output / "latest"))] = (
                st.st_ino,
                st.st_mtime_ns,
                digest.hexdigest(),
            )
    return found


def print_partition_changes(
    before: dict[str, tuple[int, int, str]], after: dict[str, tuple[int, int, str]]
) -> None:
    """Which partition files the sync rewrote (new inode or mtime; bytes changed or not)
    and which it left as they were."""
    print("partition files after the sync (vs before it):")
    for rel in sorted(set(before) | set(after)):
        if rel not in before:
            state = "new"
        elif rel not in after:
            state = "gone"
        elif before[rel][:2] == after[rel][:2]:
            state = "untouched (same inode and mtime)"
        elif before[rel][2] == after[rel][2]:
            state = "rewritten, same bytes"
        else:
            state = "rewritten, bytes changed"
        print(f"  {rel:<60} {state}")


def child_baseline(root: Path) -> dict[str, object]:
    """json.load every file; statistics per type x kernel x mode (what a script would do)."""
    import statistics

    t0 = time.perf_counter()
    groups: dict[tuple[str, str, str], list[float]] = {}
    for dirpath, _, files in os.walk(root / "raw"):
        for name in files:
            if not name.endswith(".json"):
                continue
            with open(os.path.join(dirpath, name), encoding="utf-8") as fh:
                doc = json.load(fh)
            itype = doc["metadata"]["instance_type"]
            for run in doc["performance_data"]["stream"]["runs"]:
                for kernel, k in run["kernels"].items():
                    groups.setdefault((itype, kernel, run["thread_mode"]), []).append(
                        k["best_gbps"]
                    )
    out = {
        key: (statistics.median(v), statistics.fmean(v), statistics.stdev(v))
        for key, v in sorted(groups.items())
    }
    return {"seconds": time.perf_counter() - t0, "groups": len(out), **_peak_mib()}


def child_pipeline(root: Path, output: Path, memory_limit: str | None) -> dict[str, object]:
    from instbench.analysis.ingest import ingest
    from instbench.analysis.publish import publish

    with TreeSampler() as sampler:
        t0 = time.perf_counter()
        with ingest(root, memory_limit=memory_limit) as dataset:
            t1 = time.perf_counter()
            publication = publish(dataset, output, include_sandbox=False)
            validated = dataset.report.validated_now
        t2 = time.perf_counter()
    rows = publication.index["partitioning"]["tidy"]["rows"]
    return {
        "seconds": t2 - t0,
        "ingest_s": t1 - t0,
        "publish_s": t2 - t1,
        "validated": validated,
        "tidy_rows": rows,
        "reused_exports": publication.reused_exports,
        "partitions_written": publication.partitions_written,
        "partitions": publication.partitions,
        "peak_tree_mib": round(sampler.peak / 2**20, 1),
        **_peak_mib(),
    }


def _run_child(*args: str) -> dict[str, object]:
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=100_000, help="documents to generate")
    parser.add_argument("--keep", type=Path, help="mirror directory to create or reuse")
    parser.add_argument(
        "--memory-limit", default="1GB", help="DuckDB memory_limit of every instbench run"
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="where the publication goes (default: a temporary directory, removed after)",
    )
    parser.add_argument(
        "--skip-baseline",
        action="store_true",
        help="do not time the json.load baseline (ratios are then not printed)",
    )
    parser.add_argument("--child", choices=["baseline", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "baseline":
        print(json.dumps(child_baseline(args.root)))
        return
    if args.child == "pipeline":
        print(json.dumps(child_pipeline(args.root, args.output, args.memory_limit)))
        return

    with tempfile.TemporaryDirectory(prefix="instbench-bench-") as tmp:
        root = args.keep or Path(tmp) / "mirror"
        if not (root / "raw").exists():
            t = time.perf_counter()
            generate(root, args.n)
            print(f"generated {args.n} documents in {time.perf_counter() - t:.1f} s")
            os.sync()
        documents = sum(1 for _ in (root / "raw").rglob("*.json"))
        cache = root / ".instbench"
        if cache.exists():
            import shutil

            shutil.rmtree(cache)  # the cold run starts without the ingest cache
        out = args.output_dir or Path(tmp) / "processed"
        if out.exists():
            import shutil

            shutil.rmtree(out)  # the cold run starts with an empty output
        baselines = (
            []
            if args.skip_baseline
            else [_run_child("--child", "baseline", "--root", str(root)) for _ in range(2)]
        )
        pipeline = (
            "--child",
            "pipeline",
            "--root",
            str(root),
            "--output",
            str(out),
            "--memory-limit",
            args.memory_limit,
        )
        cold = _run_child(*pipeline)
        warm = _run_child(*pipeline)
        added = max(1, documents // 100)
        generate(root, added, start=documents, run="bench-sync")
        os.sync()  # the generator's writes are flushed now, not by the kernel while timed
        before = partition_files(out)
        try:
            synced = _run_child(*pipeline)
        finally:  # a kept mirror is left as it was given
            for path in (root / "raw").rglob("bench-sync-*.json"):
                path.unlink()
        after = partition_files(out)
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"documents: {documents}, CPUs: {cpus}")
        b = float("nan")
        if baselines:
            baseline = min(baselines, key=lambda r: float(str(r["seconds"])))
            b = float(str(baseline["seconds"]))
            print(
                "baseline (json.load + statistics): "
                + ", ".join(f"{float(str(r['seconds'])):.2f} s" for r in baselines)
                + f" (compared with: {b:.2f} s), peak {baseline['peak_mib']} MiB"
            )
        runs = [("cold", cold), ("warm, nothing new", warm)]
        runs.append((f"after a sync of {added} new", synced))
        print(f"instbench runs with --memory-limit {args.memory_limit}:")
        head = (
            f"{'run':<26} {'seconds':>8} {'ingest':>7} {'publish':>8} {'baseline/this':>13} "
            f"{'validated':>9} {'tidy rows':>10} {'partitions written':>18} "
            f"{'peak MiB':>9} {'all processes MiB':>17}"
        )
        print(head)
        print("-" * len(head))
        for name, res in runs:
            parts = f"{res['partitions_written']} of {res['partitions']}"
            print(
                f"{name:<26} {res['seconds']:>8.2f} {res['ingest_s']:>7.2f} "
                f"{res['publish_s']:>8.2f} {b / float(str(res['seconds'])):>12.2f}x "
                f"{res['validated']:>9} {res['tidy_rows']:>10} {parts:>18} "
                f"{res['peak_mib']:>9} {res['peak_tree_mib']:>17}"
            )

        print_partition_changes(before, after)


if __name__ == "__main__":
    main()
