"""Orchestration scale: N sandbox tasks of a fixed-duration benchmark at concurrency C.

    python bench/orchestrate.py [--tasks 100] [--concurrency 20] [--task-seconds 30]

The cloud (`instbench sandbox serve`: moto + simulated cloud-init running up to C
instances at once) runs in a child process; the controller (plan, launch, wait, validate,
store, terminate) runs in this process, so `getrusage(RUSAGE_SELF)` is the controller's
CPU alone. Every task runs the `idle` benchmark, which waits a fixed time and measures
nothing, so the ideal wall time is known: ceil(N / C) waves of `task-seconds`.

Prints, side by side in one run:
- parallel efficiency = N x task time / (C x wall)   (goal >= 0.90 at N=100, C=20; the
  earlier collector reported 0.92 at C=5)
- controller CPU seconds per task                    (goal <= 0.2 s)
and the ideal (a perfect scheduler with zero overhead) for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from instbench.aws.session import AwsSession, AwsSettings
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import execute, plan_run
from instbench.journal import Journal

TYPES = ["m7i.large", "m7a.large", "c7g.large", "r7i.large", "c7i.large"]


def _start_cloud(concurrency: int, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start `instbench sandbox serve`; its output goes to a file beside the workdir (a pipe
    nobody reads would block the cloud once it filled up)."""
    env = dict(os.environ)
    cmd = [
        str(Path(sys.executable).parent / "instbench"),
        "sandbox",
        "serve",
        "--port",
        "0",
        "--max-parallel",
        str(concurrency),
        "--workdir",
        str(workdir),
    ]
    log = workdir.parent / "cloud.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        match = re.search(r"(http://127\.0\.0\.1:\d+)", log.read_text(errors="replace"))
        if match:
            return proc, match.group(1)
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"sandbox serve did not print its endpoint (see {log})")


def _cpu_of(pid: int) -> tuple[float, float]:
    """(own, waited-for children) CPU seconds of a live process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def _machine_cpu() -> tuple[float, float]:
    """(busy, idle) CPU seconds of the whole machine so far, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / tick, idle / tick


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--task-seconds", type=int, default=30)
    args = parser.parse_args()
    n, c, t = args.tasks, args.concurrency, args.task_seconds

    tmp = Path(tempfile.mkdtemp(prefix="instbench-orch-"))
    cloud, endpoint = _start_cloud(c, tmp / "cloud")
    try:
        session = AwsSession(
            AwsSettings(
                region="us-east-1",
                endpoint_url=endpoint,
                access_key_id="sandbox",
                secret_access_key="sandbox",
            )
        )
        samples = -(-n // len(TYPES))
        opts = FleetOptions(
            instance_types=TYPES,
            benchmarks=("idle",),
            bucket="instbench-sandbox-results",
            samples=samples,
            max_concurrency=c,
            timeout_s=t + 300,
            agent_args=["--duration-s", str(t)],
            # A loopback endpoint: results are labelled sandbox, as the CLI labels them,
            # and the plan reads no Service Quotas (moto has none).
            collection_method="sandbox",
        )
        plan = plan_run(session, opts, datetime.now(UTC))
        plan.tasks = plan.tasks[:n]
        journal = Journal(tmp / "journal.sqlite")
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        cloud0, machine0 = _cpu_of(cloud.pid), _machine_cpu()
        start = time.monotonic()
        outcome = execute(session, plan, journal, tmp / "data", lambda s: None, sandbox=True)
        wall = time.monotonic() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cloud1, machine1 = _cpu_of(cloud.pid), _machine_cpu()
    finally:
        cloud.send_signal(signal.SIGTERM)
        cloud.wait(timeout=60)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    stored = sum(1 for s in outcome.statuses if s.state == "result_stored")
    ideal_wall = -(-n // c) * t
    efficiency = n * t / (c * wall)
    print(f"tasks={n} concurrency={c} task_seconds={t} stored={stored}/{n}")
    print(
        f"wall: ours {wall:.1f} s, ideal {ideal_wall:.1f} s, "
        f"ratio ideal/ours {ideal_wall / wall:.3f}"
    )
    print(f"parallel efficiency N*T/(C*wall): {efficiency:.3f}  (goal >= 0.90)")
    print(f"controller CPU: {cpu:.2f} s total, {cpu / n:.3f} s per task  (goal <= 0.2)")
    # Where the rest of the machine's CPU went (not goals: the sandbox's own cost).
    print(
        f"sandbox CPU per task: cloud (moto, cloud-init, IMDS) {(cloud1[0] - cloud0[0]) / n:.3f} s,"
        f" instances (user data + agent) {(cloud1[1] - cloud0[1]) / n:.3f} s"
    )
    busy, idle = machine1[0] - machine0[0], machine1[1] - machine0[1]
    print(
        f"machine: {busy:.0f} CPU-s busy, {idle:.0f} CPU-s idle ({busy / (busy + idle):.0%} busy)"
    )
    print_timeline(journal, outcome.run_id, tmp / "cloud", t)
    print(f"journal, instances' files and the cloud's log: {tmp}")
    return 0 if stored == n else 1


def print_timeline(journal: Journal, run_id: str, cloud: Path, task_s: float) -> None:
    """Where each task's time beyond the benchmark went, median / mean / max over tasks.

    From the run journal (launch, running, stored) and the instances' files in the cloud's
    workdir, whose modification times mark the stages of the user data: user-data written
    (boot), sandbox/watchdog (the watchdog armed), the agent downloaded, result.json
    written (the agent's end), sandbox/poweroff (the log uploaded).
    """
    events: dict[str, dict[str, float]] = {}
    instance: dict[str, str] = {}
    for at, task, event, detail in journal.events(run_id):
        if task is None:
            continue
        events.setdefault(task, {})[event] = datetime.fromisoformat(at).timestamp()
        if event == "launching->running" and detail:
            instance[task] = json.loads(detail).get("instance_id", "")

    def mtime(path: Path) -> float | None:
        try:
            return path.stat().st_mtime
        except OSError:
            return None

    stages: dict[str, list[float]] = {}
    for task, iid in instance.items():
        ev = events[task]
        root = cloud / iid
        workdirs = sorted((root / "tmp").glob("instbench.*"))
        if not workdirs:
            continue
        marks = {
            "launch": ev.get("planned->launching"),
            "running": ev.get("launching->running"),
            "booted": mtime(root / "user-data"),
            "watchdog": mtime(root / "sandbox" / "watchdog"),
            "agent": mtime(workdirs[0] / "agent.pyz"),
            "result": mtime(workdirs[0] / "result.json"),
            "poweroff": mtime(root / "sandbox" / "poweroff"),
            "stored": ev.get("running->result_stored"),
        }
        spans = {
            "RunInstances": ("launch", "running", 0.0),
            "cloud-init boot": ("running", "booted", 0.0),
            "user data to watchdog": ("booted", "watchdog", 0.0),
            "agent download": ("watchdog", "agent", 0.0),
            "agent (less the benchmark)": ("agent", "result", task_s),
            "upload to power-off": ("result", "poweroff", 0.0),
            "result to stored": ("result", "stored", 0.0),
        }
        for name, (a, b, less) in spans.items():
            start, end = marks[a], marks[b]
            if start is not None and end is not None:
                stages.setdefault(name, []).append(end - start - less)
    if not stages:
        return
    print("per task, seconds (median / mean / max):")
    for name, values in stages.items():
        print(
            f"  {name:28s} {statistics.median(values):6.3f} / {statistics.fmean(values):6.3f}"
            f" / {max(values):6.3f}"
        )


if __name__ == "__main__":
    sys.exit(main())
