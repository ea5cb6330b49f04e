"""STREAM fidelity: our kernel against the reference STREAM, same machine, same settings.

    python bench/stream_fidelity.py --reference PATH/TO/stream.c \
        [--rounds 5] [--array-size N] [--threads N] [--ntimes 20] [--reference-offset N]

The reference source (McCalpin's stream.c; a maintained copy is github.com/jeffhammond/STREAM)
is supplied by the user and built in a temporary directory outside the repository; nothing
here ships or downloads it. Both programs are built with the same compiler and flags
(-O3 -march=native|-mcpu=native -fopenmp; the reference also gets -DSTREAM_ARRAY_SIZE and
-DNTIMES), run at the same array size with the same OpenMP settings, interleaved round by
round (the order alternates), and the per-kernel best rates are compared as the median of
the per-round ratios ours/reference. Goal: every kernel within 0.97..1.03, CV <= 3 % on
both sides. Exit status 0 when the goal is met, 1 when not, 2 on bad input.

Array spacing: our kernel keeps its arrays 8 KiB apart beyond their length; by default the
reference gets the same spacing through STREAM's own OFFSET knob (-DOFFSET=1024), because
its static arrays at a 2^k size sit exactly a power of two apart and lose 5-15 % to that
alone. `--reference-offset 0` builds the reference with its default layout, to see it.

A ratio only means something if both sides do the same work the same way, so the script
also prints what each binary does (from objdump and /proc): libc calls substituted by the
compiler (gcc turns both Copy loops into memcpy), non-temporal store instructions in the
binaries themselves, madvise calls, the glibc threshold above which memcpy itself uses
non-temporal stores, and the transparent huge pages each process actually got.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

try:
    from instbench.benchmarks import compiler as cc
    from instbench.benchmarks import stream
    from instbench.benchmarks.errors import BenchmarkInputError
except ImportError:  # running from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from instbench.benchmarks import compiler as cc
    from instbench.benchmarks import stream
    from instbench.benchmarks.errors import BenchmarkInputError

KERNELS = stream.KERNELS
TITLES = {"copy": "Copy", "scale": "Scale", "add": "Add", "triad": "Triad"}
GOAL_LOW, GOAL_HIGH, GOAL_CV = 0.97, 1.03, 0.03
_REF_LINE = re.compile(r"^(Copy|Scale|Add|Triad):\s+([0-9.]+)\s", re.MULTILINE)
_NT_TUNABLE = re.compile(r"glibc\.cpu\.x86_non_temporal_threshold:\s*(0x[0-9a-f]+|\d+)")
_STATIC_LIMIT = 2**31 - 2**24
"""Above ~2 GiB of static data the default x86-64 code model cannot address the
reference's arrays; it then needs -mcmodel=medium (-mcmodel=large on aarch64)."""


@dataclass
class Side:
    """One program under test and what was measured for it."""

    name: str
    command: list[str]
    build: list[str]
    rates: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in KERNELS})
    anon_huge_kb: int = 0
    validated: bool = True
    notes: list[str] = field(default_factory=list)


class _ThpProbe:
    """Samples a process's AnonHugePages (/proc/PID/smaps_rollup) while it runs.

    Used only in the uncounted disclosure pass: reading smaps walks the page tables and
    would disturb a timed run.
    """

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        self.pid, self.interval, self.max_kb = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        path = f"/proc/{self.pid}/smaps_rollup"
        while not self._stop.is_set():
            try:
                with open(path, encoding="ascii") as fh:
                    for line in fh:
                        if line.startswith("AnonHugePages:"):
                            self.max_kb = max(self.max_kb, int(line.split()[1]))
            except (OSError, ValueError):
                pass
            self._stop.wait(self.interval)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.max_kb


def _run(cmd: list[str], env: dict[str, str], probe: bool) -> tuple[str, int]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    sampler = _ThpProbe(proc.pid) if probe else None
    out, err = proc.communicate()
    huge = sampler.stop() if sampler else 0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with status {proc.returncode}: {err.strip()[-500:]}")
    return out, huge


def _ours_rates(text: str) -> tuple[dict[str, float], bool]:
    data = stream.parse_output(text)
    run = stream.summarise_run(data, "all", 0.0)
    rates = {k: run["kernels"][k]["best_gbps"] * 1e3 for k in KERNELS}  # MB/s like STREAM
    return rates, bool(run["validation_passed"])


def _reference_rates(text: str) -> tuple[dict[str, float], bool]:
    found = {name.lower(): float(rate) for name, rate in _REF_LINE.findall(text)}
    missing = [k for k in KERNELS if k not in found]
    if missing:
        raise SystemExit(f"reference output lacks {', '.join(missing)} lines:\n{text[-2000:]}")
    return found, "Solution Validates" in text


def _disassembly(binary: Path) -> str:
    objdump = shutil.which("objdump")
    if objdump is None:
        return ""
    proc = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", str(binary)], capture_output=True, text=True
    )
    return proc.stdout


def _describe_binary(binary: Path) -> list[str]:
    """What the compiled program does that matters for bandwidth, from its disassembly."""
    text = _disassembly(binary)
    if not text:
        return ["objdump not found: binary not inspected"]
    libc = sorted(set(re.findall(r"(?:call|jmp|bl|b)\s+[0-9a-f]+ <(mem\w+|madvise)@plt>", text)))
    nt = len(re.findall(r"\b(v?movnt\w*|stnp)\b", text))
    notes = [
        "libc calls from compiled code: " + (", ".join(libc) if libc else "none"),
        f"non-temporal store instructions in the binary itself: {nt}",
        "madvise: " + ("called" if "madvise" in libc else "never called"),
    ]
    if "memcpy" in libc:
        notes.append("Copy loop compiled to a memcpy call (glibc's memcpy does the copy)")
    return notes


def _nt_threshold() -> str | None:
    """glibc's x86 non-temporal threshold: memcpy above it uses streaming stores."""
    for loader in sorted(glob.glob("/lib64/ld-linux*.so*") + glob.glob("/lib/ld-linux*.so*")):
        try:
            proc = subprocess.run(
                [loader, "--list-tunables"], capture_output=True, text=True, timeout=10
            )
        except OSError:
            continue
        match = re.search(
            r"glibc\.cpu\.x86_non_temporal_threshold:\s*(0x[0-9a-f]+|\d+)", proc.stdout
        )
        if match:
            return match.group(1)
    return None


def _cv(values: list[float]) -> float:
    return statistics.pstdev(values) / statistics.fmean(values) if len(values) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", type=Path, required=True, help="path to stream.c")
    parser.add_argument("--rounds", type=int, default=5, help="counted rounds (>= 5)")
    parser.add_argument(
        "--array-size", type=int, default=None, help="default: what the agent would choose"
    )
    parser.add_argument("--threads", type=int, default=None, help="default: all usable CPUs")
    parser.add_argument("--ntimes", type=int, default=20)
    parser.add_argument(
        "--reference-offset",
        type=int,
        default=stream.ARRAY_GAP_ELEMENTS,
        help="STREAM's OFFSET for the reference, elements of padding after each array "
        f"(default {stream.ARRAY_GAP_ELEMENTS}: the same spacing as ours; 0: the "
        "reference's default layout)",
    )
    args = parser.parse_args(argv)
    if not args.reference.is_file():
        parser.error(f"{args.reference} is not a file")
    source = args.reference.read_text(errors="replace")
    if "STREAM_ARRAY_SIZE" not in source:
        parser.error(f"{args.reference} does not look like STREAM's stream.c")
    if args.reference_offset < 0:
        parser.error("--reference-offset must be >= 0")
    if args.rounds < 5:
        parser.error("--rounds must be at least 5")
    try:
        options = stream.StreamOptions(
            array_elements=args.array_size, ntimes=args.ntimes, threads=args.threads
        )
        elements, reason = stream.plan_array_size(
            options.array_elements,
            mem_available=stream._mem_available_bytes(),
            llc_total=stream._llc_total_bytes(),
        )
        compiler = cc.find_compiler()
    except BenchmarkInputError as exc:
        parser.error(str(exc))
    threads = options.threads or len(os.sched_getaffinity(0))
    flags = cc.native_flags()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "KMP_"))}
    env.update(stream.omp_environment(threads))

    with tempfile.TemporaryDirectory(prefix="stream-fidelity-") as tmp:
        work = Path(tmp)
        ours_build = cc.build_kernel("stream.c", compiler, flags, work / "cache")
        ref_src = work / "reference" / "stream.c"
        ref_src.parent.mkdir()
        shutil.copyfile(args.reference, ref_src)
        ref_flags = [*flags, f"-DSTREAM_ARRAY_SIZE={elements}", f"-DNTIMES={args.ntimes}"]
        extra = []
        gap_note = (
            f"arrays {8 * (elements + args.reference_offset)} bytes apart (static, "
            f"OFFSET={args.reference_offset})"
        )
        if args.reference_offset:
            ref_flags.append(f"-DOFFSET={args.reference_offset}")
        if (8 * elements) % 2**21 == 0 and not args.reference_offset:
            gap_note += (
                "; a multiple of 2 MiB apart: equal indices collide in the memory system "
                "(STREAM's documented power-of-two case, the reason OFFSET exists)"
            )
        extra.append(gap_note)
        if 3 * 8 * (elements + args.reference_offset) > _STATIC_LIMIT:
            model = "-mcmodel=large" if platform.machine() == "aarch64" else "-mcmodel=medium"
            ref_flags.append(model)
            extra.append(f"{model} (static arrays above 2 GiB need it; ours does not)")
        ref_bin = work / "reference" / "stream"
        ref_cmd = cc.compile_command(compiler, ref_flags, ref_src, ref_bin)
        proc = subprocess.run(ref_cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise SystemExit(f"building the reference failed:\n{proc.stderr[-2000:]}")

        ours = Side(
            "ours",
            [str(ours_build.binary), str(elements), str(args.ntimes)],
            cc.compile_command(compiler, flags, Path("kernels/stream.c"), Path("stream")),
        )
        ref = Side("reference", [str(ref_bin)], ref_cmd)
        ours_stride = 8 * (-(-elements // 512) * 512 + stream.ARRAY_GAP_ELEMENTS)
        ours.notes = [
            *_describe_binary(ours_build.binary),
            f"arrays {ours_stride} bytes apart (one posix_memalign block, fixed gap)",
        ]
        ref.notes = _describe_binary(ref_bin) + extra

        print(f"compiler: {compiler.path} ({compiler.version})")
        print(f"array size: {reason}")
        print(f"ntimes: {args.ntimes} (first discarded)  rounds: {args.rounds}  threads: {threads}")
        print("OpenMP: " + " ".join(f"{k}={v}" for k, v in stream.omp_environment(threads).items()))
        print(f"THP policy: {stream._thp_policy()}")
        load_before = os.getloadavg()[0]
        threshold = _nt_threshold()
        if threshold is not None:
            chunk = 8 * elements // threads
            print(
                f"glibc x86_non_temporal_threshold: {int(threshold, 0)} bytes; per-thread Copy "
                f"chunk {chunk} bytes -> memcpy "
                + ("uses non-temporal stores" if chunk > int(threshold, 0) else "uses plain stores")
                + " (same for both sides)"
            )

        def once(side: Side, probe: bool) -> dict[str, float]:
            out, huge = _run(side.command, env, probe)
            rates, valid = (_ours_rates if side is ours else _reference_rates)(out)
            side.validated &= valid
            if probe:
                side.anon_huge_kb = huge
            return rates

        print("disclosure pass (not counted): sampling AnonHugePages of each process ...")
        once(ours, True)
        once(ref, True)
        ratios: dict[str, list[float]] = {k: [] for k in KERNELS}
        for r in range(args.rounds):
            order = (ours, ref) if r % 2 == 0 else (ref, ours)
            got = {side.name: once(side, False) for side in order}
            for k in KERNELS:
                ours.rates[k].append(got["ours"][k])
                ref.rates[k].append(got["reference"][k])
                ratios[k].append(got["ours"][k] / got["reference"][k])
            print(
                f"round {r + 1}/{args.rounds}: "
                + "  ".join(f"{TITLES[k]} {ratios[k][-1]:.3f}" for k in KERNELS)
            )

    load_after = os.getloadavg()[0]
    print(f"\nload average (1 min) before/after: {load_before:.2f} / {load_after:.2f}")
    if load_before > 0.5:
        print("  other processes were running: they share the CPUs and the memory bus, expect a")
        print("  larger CV; the per-round ratios are paired, so they are less affected")
    for side in (ours, ref):
        print(f"\n{side.name}: {' '.join(side.build)}")
        for note in side.notes:
            print(f"  - {note}")
        print(f"  - AnonHugePages seen while running: {side.anon_huge_kb} kB")
        print(f"  - validation: {'passed' if side.validated else 'FAILED'}")

    print(
        f"\n{'kernel':<7}{'ours MB/s':>12}{'ref MB/s':>12}{'ratio':>8}"
        f"{'CV ours':>9}{'CV ref':>8}  goal"
    )
    met = ours.validated and ref.validated
    for k in KERNELS:
        ratio = statistics.median(ratios[k])
        cv_o, cv_r = _cv(ours.rates[k]), _cv(ref.rates[k])
        ok = GOAL_LOW <= ratio <= GOAL_HIGH and cv_o <= GOAL_CV and cv_r <= GOAL_CV
        met &= ok
        print(
            f"{TITLES[k]:<7}{statistics.median(ours.rates[k]):>12.1f}"
            f"{statistics.median(ref.rates[k]):>12.1f}{ratio:>8.3f}"
            f"{100 * cv_o:>8.1f}%{100 * cv_r:>7.1f}%  {'ok' if ok else 'MISSED'}"
        )
    print(
        f"\nratio = median over rounds of ours/reference best rate; goal {GOAL_LOW}..{GOAL_HIGH},"
        f" CV <= {GOAL_CV:.0%}: {'met' if met else 'NOT met'}"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
