"""Finding the compiler and building kernels with it: real gcc, real cache directory."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from instbench.benchmarks import compiler as cc
from instbench.benchmarks.errors import BenchmarkError, BenchmarkInputError, ToolchainMissing

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")

KERNEL = Path(cc.__file__).parent / "kernels" / "stream.c"


def test_finds_gcc_and_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CC", raising=False)
    found = cc.find_compiler()
    assert os.path.isabs(found.path)
    assert found.name == "gcc"
    assert found.version and "\n" not in found.version
    assert found.as_dict() == {"path": found.path, "name": "gcc", "version": found.version}


def test_cc_variable_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    gcc = shutil.which("gcc")
    assert gcc is not None
    monkeypatch.setenv("CC", gcc)
    assert cc.find_compiler().path == os.path.abspath(gcc)


def test_missing_compiler_names_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainMissing) as info:
        cc.find_compiler()
    message = str(info.value)
    assert isinstance(info.value, BenchmarkInputError)
    assert "no C compiler found" in message and "no-such-cc" in message
    assert "dnf install -y gcc" in message and "apt-get install -y gcc" in message
    assert "\n" not in message


def test_native_flags_per_architecture() -> None:
    assert cc.native_flags("x86_64") == ["-O3", "-march=native", "-fopenmp"]
    assert cc.native_flags("aarch64") == ["-O3", "-mcpu=native", "-fopenmp"]
    assert cc.native_flags("arm64") == ["-O3", "-mcpu=native", "-fopenmp"]


def test_kernel_source_comes_from_the_package() -> None:
    assert cc.kernel_source("stream.c") == KERNEL.read_bytes()
    with pytest.raises(BenchmarkError, match="missing"):
        cc.kernel_source("no-such-kernel.c")


def test_build_is_cached_by_source_compiler_and_flags(tmp_path: Path) -> None:
    found = cc.find_compiler()
    flags = cc.native_flags()
    first = cc.build_kernel("stream.c", found, flags, tmp_path)
    assert not first.cached and first.compile_s > 0
    assert first.source_sha256 == hashlib.sha256(KERNEL.read_bytes()).hexdigest()
    assert os.access(first.binary, os.X_OK)
    stat = first.binary.stat()

    again = cc.build_kernel("stream.c", found, flags, tmp_path)
    assert again.cached and again.binary == first.binary and again.compile_s == 0
    # Not recompiled: the very same file, untouched.
    after = again.binary.stat()
    assert (after.st_ino, after.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)

    other = cc.build_kernel("stream.c", found, ["-O2", "-fopenmp"], tmp_path)
    assert not other.cached and other.binary != first.binary
    # Only finished binaries are left behind: no temporary build directories.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [first.binary.name, other.binary.name]
    )


def test_compile_error_is_a_benchmark_error_and_leaves_nothing(tmp_path: Path) -> None:
    found = cc.find_compiler()
    with pytest.raises(BenchmarkError) as info:
        cc.build_kernel("stream.c", found, ["-O2", "-fopenmp", "-fno-such-option"], tmp_path)
    assert not isinstance(info.value, ToolchainMissing)
    assert "no-such-option" in str(info.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "stderr", "hint"),
    [
        # gcc without libgomp's header (recorded from a gcc install without libgomp-devel)
        (
            "gcc",
            "stream.c:35:10: fatal error: omp.h: No such file or directory\n"
            "   35 | #include <omp.h>\ncompilation terminated.\n",
            "libgomp",
        ),
        ("gcc", "/usr/bin/ld: cannot find -lgomp: No such file or directory\n", "libgomp"),
        (
            "clang",
            "stream.c:35:10: fatal error: 'omp.h' file not found\n",
            "libomp",
        ),
    ],
)
def test_missing_openmp_is_reported_as_a_toolchain_problem(
    name: str, stderr: str, hint: str
) -> None:
    compiler = cc.Compiler(path=f"/usr/bin/{name}", name=name, version=f"{name} 1.0")
    error = cc._compile_failure(compiler, stderr)
    assert isinstance(error, ToolchainMissing)
    assert "OpenMP" in str(error) and hint in str(error)


# ------------------------------------------------------------ running a benchmark binary


def test_run_binary_returns_the_process_and_its_wall_time() -> None:
    proc, seconds = cc.run_binary(["sh", "-c", "echo out; echo err >&2; exit 3"], 30, "the tool")
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "out\n", "err\n")
    assert seconds >= 0.0


def test_run_binary_turns_a_timeout_and_a_missing_binary_into_one_line_errors() -> None:
    with pytest.raises(BenchmarkError) as late:
        cc.run_binary(["sleep", "30"], 0.2, "the sleeper")
    assert str(late.value) == "the sleeper did not finish within 0.2 s"
    with pytest.raises(BenchmarkError, match=r"^cannot run the ghost: .*No such file"):
        cc.run_binary(["/nonexistent/ghost"], 5, "the ghost")


def test_run_binary_raises_the_callers_error_type() -> None:
    class Unavailable(Exception):
        pass

    with pytest.raises(Unavailable, match=r"^cannot run CoreMark: "):
        cc.run_binary(["/nonexistent/coremark"], 5, "CoreMark", error=Unavailable)


def test_exit_failure_names_the_signal_or_the_status_and_the_stderr_tail() -> None:
    killed, _ = cc.run_binary(["sh", "-c", "echo dying >&2; kill -9 $$"], 30, "k")
    assert cc.exit_failure(killed, "the kernel") == (
        "the kernel was killed by signal 9 (out of memory?): dying"
    )
    failed, _ = cc.run_binary(["sh", "-c", "printf 'a\\nb\\nc\\nd\\n' >&2; exit 5"], 30, "k")
    assert cc.exit_failure(failed, "the kernel") == "the kernel exited with status 5: b | c | d"
    quiet, _ = cc.run_binary(["sh", "-c", "exit 1"], 30, "k")
    assert cc.exit_failure(quiet, "the kernel") == "the kernel exited with status 1"
