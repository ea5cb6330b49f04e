"""Frequency for the theoretical peak: which source is used (cpufreq, cpuinfo, measured),
the clock kernel's output and build (a dependent add chain, checked in the disassembly),
and a plausibility check of the clock measured on this machine.

The measured value is checked against 0.5-6 GHz, a range any real core falls in; that is
a sanity check of the method, not a timing assertion. The kernel divides adds by wall
time, so a loaded machine lowers its figure by the share of a core it got; the lower bound
is applied per second of CPU the kernel got (see the test), which load cannot lower.
"""

from __future__ import annotations

import re
import resource
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from instbench.agent import sysinfo
from instbench.benchmarks import compiler as cc
from instbench.benchmarks import isa
from instbench.benchmarks.errors import BenchmarkError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sysinfo"
needs_gcc = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

#   clock ms=20 trials=5, on the 2-core EPYC VM (cpuinfo says 2445.406 MHz, nominal)
CLOCK_RECORDED = (
    '{"program":"instbench-clock","kernel_version":"1.0.0","chain":1000,"ms":20,'
    '"adds_per_s":[3.059408e+09,3.08640326e+09,3.10977221e+09,3.0970875e+09,3.11465474e+09],'
    '"best_mhz":3114.654741,"sink":1547500003}\n'
)


def _never() -> float:
    raise AssertionError("measured although the OS reports a frequency")


def test_os_frequency_wins_and_is_labelled(tmp_path: Path) -> None:
    cpufreq = isa.choose_frequency(3500.0, [3500.0, 3500.0], _never)
    assert cpufreq == {"mhz": 3500.0, "source": isa.SOURCE_CPUFREQ, "note": ""}
    cpuinfo = isa.choose_frequency(2445.406, [], _never)
    assert cpuinfo["mhz"] == 2445.406 and cpuinfo["source"] == isa.SOURCE_CPUINFO
    # cpufreq present but sysinfo's figure is another one: it came from cpuinfo
    assert isa.reported_source(2445.406, [3500.0]) == isa.SOURCE_CPUINFO
    assert isa.reported_source(None, [3500.0]) is None


def test_measured_only_when_the_os_reports_nothing() -> None:
    calls: list[int] = []

    def measure() -> float:
        calls.append(1)
        return 2600.0

    got = isa.choose_frequency(None, [], measure)
    assert calls == [1]
    assert got["mhz"] == 2600.0 and got["source"] == "measured: dependent-add loop"
    assert "dependent integer-add chain" in got["note"]
    unknown = isa.choose_frequency(None, [], None)
    assert unknown["mhz"] is None and unknown["source"] is None


def test_failed_or_implausible_measurement_leaves_the_frequency_unknown() -> None:
    def broken() -> float:
        raise BenchmarkError("compiling the kernel failed")

    failed = isa.choose_frequency(None, [], broken)
    assert failed["mhz"] is None and "measuring it failed" in failed["note"]
    absurd = isa.choose_frequency(None, [], lambda: 40.0)
    assert absurd["mhz"] is None and "outside" in absurd["note"]


def test_graviton3_clock_is_measured_when_the_os_reports_none() -> None:
    """c7g.2xlarge reports no MHz: choose_frequency falls back to the measured clock."""
    c7g = sysinfo.collect(str(FIXTURES / "c7g.2xlarge"))["cpu"]
    assert c7g["max_mhz"] is None
    freq = isa.choose_frequency(c7g["max_mhz"], [], lambda: 2600.0)
    assert freq["mhz"] == 2600.0 and freq["source"] == isa.SOURCE_MEASURED
    assert isa.choose_frequency(None, [], None)["mhz"] is None


def test_epyc_frequency_is_labelled_cpuinfo() -> None:
    epyc = sysinfo.collect(str(FIXTURES / "kvm-amd-epyc"))["cpu"]
    freq = isa.choose_frequency(epyc["max_mhz"], [], _never)
    assert freq["source"] == "cpuinfo" and freq["mhz"] == epyc["max_mhz"]


def test_cpufreq_reader(tmp_path: Path) -> None:
    for n, khz in ((0, "3500000\n"), (1, "3200000\n"), (2, "garbage\n")):
        d = tmp_path / f"cpu{n}" / "cpufreq"
        d.mkdir(parents=True)
        (d / "cpuinfo_max_freq").write_text(khz)
    (tmp_path / "cpufreq").mkdir()  # the policy directory is not a CPU
    assert sorted(isa.cpufreq_max_mhz(str(tmp_path))) == [3200.0, 3500.0]
    assert isa.cpufreq_max_mhz(str(tmp_path / "absent")) == []


def test_parse_clock_output() -> None:
    assert isa.parse_clock_output(CLOCK_RECORDED) == pytest.approx(3114.654741)
    with pytest.raises(BenchmarkError):
        isa.parse_clock_output(CLOCK_RECORDED.replace("instbench-clock", "other"))
    with pytest.raises(BenchmarkError):
        isa.parse_clock_output(CLOCK_RECORDED.replace('"1.0.0"', '"0.9"'))
    with pytest.raises(BenchmarkError):
        isa.parse_clock_output(CLOCK_RECORDED.replace("3114.654741", "0"))
    with pytest.raises(BenchmarkError):
        isa.parse_clock_output("not json")


TOOLCHAINS = [
    pytest.param(("gcc", "objdump"), id="native"),
    pytest.param(("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-objdump"), id="aarch64"),
]


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_clock_loop_is_a_dependent_add_chain(tmp_path: Path, toolchain: tuple[str, str]) -> None:
    """The compiled loop is CHAIN adds into one register, not folded into a multiply.

    Checked for this machine's gcc and, where the cross toolchain is installed, for aarch64
    (what Graviton builds).
    """
    gcc, objdump = (shutil.which(t) for t in toolchain)
    if gcc is None or objdump is None:
        pytest.skip(f"needs {' and '.join(toolchain)}")
    version = subprocess.run([gcc, "--version"], capture_output=True, text=True, check=True)
    compiler = cc.Compiler(path=gcc, name="gcc", version=version.stdout.splitlines()[0])
    built = cc.build_kernel(isa.CLOCK_SOURCE, compiler, isa.CLOCK_FLAGS, tmp_path)
    dump = subprocess.run(
        [objdump, "-d", "--no-show-raw-insn", str(built.binary)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    # x86 AT&T: add %src,%dst / aarch64: add xD, xS, xD or add xD, xD, xS
    chains: dict[str, int] = {}
    for m in re.finditer(r"\tadd\s+(%\w+,%\w+|x\d+, x\d+, x\d+)\s*$", dump, re.MULTILINE):
        chains[m.group(1)] = chains.get(m.group(1), 0) + 1
    operands, count = max(chains.items(), key=lambda kv: kv[1])
    assert count >= 1000, chains
    regs = re.findall(r"%?\w+", operands)
    if operands.startswith("%"):
        src, dst = regs
        assert src != dst  # dst += src: each add needs the previous dst
    else:
        dst, a, b = regs
        assert dst in (a, b) and a != b


@needs_gcc
def test_measured_clock_is_plausible_here(tmp_path: Path) -> None:
    """At most 6 GHz as measured, at least 0.5 GHz per second of CPU the kernel got.

    The kernel reports adds per wall second, best of its trials: time off the CPU (a
    shared, loaded machine) can only lower it, never raise it, so the upper bound (which a
    chain folded into a multiply would pass by orders of magnitude) is checked as is. The
    lower bound is checked on the figure divided by the kernel's share of a core (its CPU
    seconds over the wall seconds of its run), which off-CPU time does not lower: the best
    trial ran at least at the run's average share, so the quotient is no less than about
    the clock.
    """
    compiler = cc.find_compiler()
    # Built first, so that the compiler's CPU and wall time are not counted below.
    cc.build_kernel(isa.CLOCK_SOURCE, compiler, isa.CLOCK_FLAGS, tmp_path)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    mhz = isa.measure_mhz(compiler, tmp_path)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert cpu > 0.0, "the clock kernel used no CPU time"
    share = min(1.0, cpu / wall)
    assert mhz <= 6000.0
    assert mhz / share >= 500.0, f"{mhz:.0f} MHz measured with {share:.0%} of a core"
