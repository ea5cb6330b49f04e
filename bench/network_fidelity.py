"""The network benchmark over loopback against plain tools run by hand, side by side.

Throughput: for each of the four tests (1 flow and N flows, each direction), the rate the
`network` benchmark reports against the rate of a plain `iperf3 -c 127.0.0.1` run
against a plain `iperf3 -s`, same duration and flows, rounds interleaved (the order
alternates). Printed: the median of the per-round ratios ours/plain and each side's
median Gbps. Both use the same iperf3 binary, so a ratio far from 1 would mean our
wrapping (server start, JSON parsing, the receiver's figure) changes what is measured.

Latency: our C kernel (netlat) against a Python ping-pong of 1-byte messages over one TCP
connection (TCP_NODELAY on both ends, the echo server in its own process), same number of
round trips. Printed: median, p99, p99.9 of each and python/ours: how much of a
Python-timed round trip would be Python's own overhead.

Loopback only (127.0.0.1): this says what the tools and the kernel can move on one
machine, never what a network does. Nothing here asserts anything; it prints.

    .venv/bin/python bench/network_fidelity.py [--rounds 3] [--duration 3] [--round-trips 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from instbench.benchmarks import network

ECHO_SERVER = r"""
import socket, sys
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", int(sys.argv[1])))
srv.listen(1)
print("listening", flush=True)
conn, _ = srv.accept()
conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
while True:
    b = conn.recv(1)
    if not b:
        break
    conn.sendall(b)
"""


def plain_iperf3(duration: int, flows: int, reverse: bool) -> float:
    """Gbps received in one plain iperf3 run against its own plain server."""
    port = network.free_port_pair()
    server = subprocess.Popen(
        ["iperf3", "-s", "-1", "-B", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        cmd = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(duration)]
        cmd += ["-P", str(flows), "-J"] + (["-R"] if reverse else [])
        for _ in range(50):
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            data = json.loads(proc.stdout)
            if "error" not in data:
                return float(data["end"]["sum_received"]["bits_per_second"]) / 1e9
            time.sleep(0.1)  # the server was not listening yet
        raise RuntimeError(f"plain iperf3 failed: {data['error']}")
    finally:
        server.wait(timeout=30)


def ours(duration: int, flows: int, trips: int, cache: Path) -> dict[str, Any]:
    options = network.NetworkOptions(
        duration_s=duration, flows=flows, burst_s=0, round_trips=trips, interval_s=1.0
    )
    section, _ = network.run_network(options, cache_dir=cache)
    return section


def python_ping_pong(trips: int, warmup: int) -> dict[str, float]:
    """Round-trip percentiles (µs) of a Python client against a Python echo process."""
    port = network.free_port_pair()
    server = subprocess.Popen(
        [sys.executable, "-c", ECHO_SERVER, str(port)], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    server.stdout.readline()
    try:
        with socket.create_connection(("127.0.0.1", port)) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            samples = []
            clock = time.perf_counter_ns
            for i in range(warmup + trips):
                t0 = clock()
                sock.sendall(b"x")
                sock.recv(1)
                t1 = clock()
                if i >= warmup:
                    samples.append((t1 - t0) / 1000.0)
    finally:
        server.wait(timeout=30)
    samples.sort()
    return {
        "median_us": rank(samples, 50.0),
        "p99_us": rank(samples, 99.0),
        "p999_us": rank(samples, 99.9),
    }


def rank(ordered: list[float], p: float) -> float:
    """Nearest-rank percentile, as the C kernel computes it."""
    k = max(1, min(len(ordered), int(-(-p * len(ordered) // 100))))
    return ordered[k - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=3, help="seconds per iperf3 test")
    parser.add_argument("--round-trips", type=int, default=20000)
    parser.add_argument("--flows", type=int, default=network.default_flows())
    args = parser.parse_args()
    tests = [
        ("tcp_1flow", 1, False),
        ("tcp_1flow_reverse", 1, True),
        ("tcp_nflows", args.flows, False),
        ("tcp_nflows_reverse", args.flows, True),
    ]
    ratios: dict[str, list[float]] = {name: [] for name, _, _ in tests}
    mine: dict[str, list[float]] = {name: [] for name, _, _ in tests}
    plain: dict[str, list[float]] = {name: [] for name, _, _ in tests}
    lat_ours: list[dict[str, float]] = []
    lat_py: list[dict[str, float]] = []
    warmup = max(1, int(args.round_trips * network.WARMUP_SHARE))
    with tempfile.TemporaryDirectory(prefix="netfid-") as tmp:
        cache = Path(tmp)
        for round_no in range(args.rounds):
            ours_first = round_no % 2 == 0
            plain_round: dict[str, float] = {}
            if not ours_first:
                plain_round = {n: plain_iperf3(args.duration, f, r) for n, f, r in tests}
                lat_py.append(python_ping_pong(args.round_trips, warmup))
            section = ours(args.duration, args.flows, args.round_trips, cache)
            lat_ours.append(section["latency"])
            if ours_first:
                plain_round = {n: plain_iperf3(args.duration, f, r) for n, f, r in tests}
                lat_py.append(python_ping_pong(args.round_trips, warmup))
            for entry in section["throughput"]:
                name = entry["name"]
                mine[name].append(entry["gbps"])
                plain[name].append(plain_round[name])
                ratios[name].append(entry["gbps"] / plain_round[name])
            print(f"round {round_no + 1}/{args.rounds} done", file=sys.stderr)

    load = os.getloadavg()
    print(
        f"loopback, {args.rounds} interleaved rounds, {args.duration} s per test, "
        f"N = {args.flows} flows; load average {load[0]:.2f} {load[1]:.2f}"
    )
    print(
        f"{'test':<20} {'ours Gbps':>10} {'plain Gbps':>11} {'ours/plain':>11} {'ratio range':>14}"
    )
    for name, _, _ in tests:
        spread = f"{min(ratios[name]):.2f}..{max(ratios[name]):.2f}"
        print(
            f"{name:<20} {statistics.median(mine[name]):>10.2f} "
            f"{statistics.median(plain[name]):>11.2f} {statistics.median(ratios[name]):>11.3f} "
            f"{spread:>14}"
        )
    print(f"\nlatency, {args.round_trips} round trips of 1 byte (medians over rounds)")
    print(f"{'statistic':<10} {'netlat us':>10} {'python us':>10} {'python/ours':>12}")
    for key in ("median_us", "p99_us", "p999_us"):
        a = statistics.median(r[key] for r in lat_ours)
        b = statistics.median(r[key] for r in lat_py)
        print(f"{key:<10} {a:>10.2f} {b:>10.2f} {b / a:>12.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
