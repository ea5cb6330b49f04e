"""Find the target's C compiler and build kernels with it, cached.

Kernels are compiled on the machine that runs them, with that machine's own compiler and
`-march=native` (`-mcpu=native` on aarch64), because the point is to measure what the
instance delivers to code built for it. Building takes about a second; the binary is
cached under a key made of everything that determines it (source, compiler path and
version, flags, and the CPU model, since `native` flags depend on it), so a re-run on the
same machine reuses it and a change of any input builds a new one.

Stdlib-only, Python 3.9: shipped inside agent.pyz, where the C source is not a file on
disk, hence `pkgutil.get_data`.
"""

from __future__ import annotations

import hashlib
import os
import pkgutil
import platform
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from instbench.benchmarks.errors import BenchmarkError, ToolchainMissing

CANDIDATES = ("gcc", "cc", "clang")
"""Compilers tried after $CC, in order: gcc first because AL2023 and Debian ship it with
libgomp, so OpenMP works out of the box."""

LINK_LIBS = ("-lm",)
"""Libraries linked after the source (kept out of the recorded cflags)."""

INSTALL_HINT = (
    "install gcc (dnf install -y gcc on Amazon Linux, apt-get install -y gcc on Debian/Ubuntu)"
)

_OPENMP_HINTS = {
    "gcc": "install libgomp (dnf install -y gcc libgomp on Amazon Linux, "
    "apt-get install -y gcc on Debian/Ubuntu)",
    "clang": "install the LLVM OpenMP runtime (dnf install -y libomp-devel on Amazon Linux, "
    "apt-get install -y libomp-dev on Debian/Ubuntu) or use gcc (CC=gcc)",
}

_OPENMP_MISSING = re.compile(
    r"omp\.h: No such file|'omp\.h' file not found|cannot find -l(g?omp)|libgomp\.spec"
    r"|unrecognized command[- ]line option '-fopenmp'|unsupported option '-fopenmp'"
    r"|unknown argument: '-fopenmp'",
    re.IGNORECASE,
)

# Lines of /proc/cpuinfo that identify the CPU (and so what `-march=native` means).
_CPU_KEYS = (
    "vendor_id",
    "cpu family",
    "model",
    "model name",
    "stepping",
    "flags",
    "Features",
    "CPU implementer",
    "CPU architecture",
    "CPU variant",
    "CPU part",
    "CPU revision",
)


@dataclass(frozen=True)
class Compiler:
    """A C compiler found on this machine."""

    path: str
    name: str
    """Family: gcc, clang, cc (a `cc` we could not identify) or other."""
    version: str
    """First line of `--version`."""

    def as_dict(self) -> dict[str, str]:
        """The result document's execution_context.compiler."""
        return {"path": self.path, "name": self.name, "version": self.version}


@dataclass(frozen=True)
class BuildResult:
    """A kernel binary ready to run."""

    binary: Path
    cached: bool
    """True when an existing binary was reused and nothing was compiled."""
    source_sha256: str
    compile_s: float = 0.0
    """Wall time spent compiling (0 when cached)."""


def _family(executable: str, version_text: str) -> str:
    text = version_text.lower()
    if "clang" in text:
        return "clang"
    if "free software foundation" in text or text.startswith("gcc"):
        return "gcc"
    return "cc" if os.path.basename(executable) == "cc" else "other"


def _probe(executable: str) -> Compiler | None:
    """Run `executable --version`; None when it is not a working compiler."""
    try:
        proc = subprocess.run(
            [executable, "--version"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    text = proc.stdout or proc.stderr
    lines = text.strip().splitlines()
    version = lines[0].strip() if lines else "unknown"
    return Compiler(path=executable, name=_family(executable, text), version=version)


def find_compiler(environ: Mapping[str, str] | None = None) -> Compiler:
    """The compiler to use: $CC if it works, else gcc, cc, clang from PATH.

    A $CC that does not exist falls through to the usual names (its path is mentioned in
    the error if none is found) so a stale CC in a login profile does not stop a run.
    """
    env = os.environ if environ is None else environ
    search_path = env.get("PATH", os.defpath)
    tried: list[str] = []
    names: list[str] = []
    cc = env.get("CC", "").strip()
    if cc:
        names.append(cc)
        tried.append(f"CC={cc}")
    names.extend(CANDIDATES)
    tried.extend(CANDIDATES)
    for name in names:
        found = shutil.which(name, path=search_path)
        if found is None:
            continue
        compiler = _probe(os.path.abspath(found))
        if compiler is not None:
            return compiler
    raise ToolchainMissing(f"no C compiler found (tried {', '.join(tried)}): {INSTALL_HINT}")


def native_flags(machine: str | None = None) -> list[str]:
    """`-O3 -march=native -fopenmp` on x86, `-O3 -mcpu=native -fopenmp` on Arm.

    gcc and clang spell "tune for this CPU" differently per architecture: on aarch64
    `-march=native` is rejected by older compilers and `-mcpu=native` is what selects the
    core (Neoverse on Graviton).
    """
    arch = (machine or platform.machine()).lower()
    if arch in ("x86_64", "amd64", "i386", "i686"):
        return ["-O3", "-march=native", "-fopenmp"]
    return ["-O3", "-mcpu=native", "-fopenmp"]


def kernel_source(source_name: str) -> bytes:
    """Bytes of a shipped kernel source (works from a zipapp as well as from disk)."""
    try:
        data = pkgutil.get_data("instbench.benchmarks", f"kernels/{source_name}")
    except OSError:
        data = None
    if data is None:
        raise BenchmarkError(f"kernel source {source_name} is missing from the package")
    return data


def _cpu_fingerprint() -> str:
    """The CPU identity lines of /proc/cpuinfo: what `native` flags resolve to."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return platform.machine()
    first = text.split("\n\n", 1)[0]
    keep = []
    for line in first.splitlines():
        key = line.split(":", 1)[0].strip()
        if key in _CPU_KEYS:
            keep.append(line.strip())
    return platform.machine() + "\n" + "\n".join(keep)


def cache_key(source: bytes, compiler: Compiler, flags: Sequence[str]) -> str:
    """sha256 over everything that determines the binary."""
    digest = hashlib.sha256()
    for part in (
        source,
        compiler.path.encode(),
        compiler.version.encode(),
        "\0".join(flags).encode(),
        "\0".join(LINK_LIBS).encode(),
        _cpu_fingerprint().encode(),
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def compile_command(
    compiler: Compiler, flags: Sequence[str], source: Path, output: Path
) -> list[str]:
    """The exact command a kernel is built with (also used by bench/ for the reference)."""
    return [compiler.path, *flags, "-o", str(output), str(source), *LINK_LIBS]


def run_compile(compiler: Compiler, argv: Sequence[str], output: Path) -> str | None:
    """Run one compile command (10-minute limit): None when it made `output`, else the
    compiler's stderr for the caller's message. BenchmarkError when the compiler cannot be
    started at all. One runner for the kernels and for CoreMark's build."""
    try:
        proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=600, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BenchmarkError(f"cannot run {compiler.path}: {exc}") from None
    if proc.returncode != 0 or not output.is_file():
        return proc.stderr
    return None


def run_binary(
    argv: Sequence[str],
    timeout: float,
    what: str,
    env: Mapping[str, str] | None = None,
    error: Callable[[str], Exception] = BenchmarkError,
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run a benchmark's binary or tool: (the finished process, its wall seconds).

    `error(message)` naming `what` when it cannot be started or outlives `timeout`; its
    exit status and output are the caller's to judge. One runner for every kernel and
    tool a benchmark starts, so that all of them fail the same way.
    """
    started = time.monotonic()
    try:
        proc = subprocess.run(
            list(argv),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=None if env is None else dict(env),
        )
    except subprocess.TimeoutExpired:
        raise error(f"{what} did not finish within {round(timeout, 1):g} s") from None
    except OSError as exc:
        raise error(f"cannot run {what}: {exc}") from None
    return proc, time.monotonic() - started


def exit_failure(proc: subprocess.CompletedProcess[str], what: str) -> str:
    """One line on how a run of `what` that exited non-zero ended: the signal that killed
    it (SIGKILL: most likely the kernel's out-of-memory killer) or its status, and the last
    lines of its stderr."""
    tail = stderr_tail(proc.stderr or "", 3)
    if proc.returncode < 0:
        oom = " (out of memory?)" if proc.returncode == -9 else ""
        ended = f"{what} was killed by signal {-proc.returncode}{oom}"
    else:
        ended = f"{what} exited with status {proc.returncode}"
    return f"{ended}: {tail}" if tail else ended


def stderr_tail(stderr: str, lines: int) -> str:
    """The last `lines` lines of a tool's stderr on one line (for one-line errors)."""
    return " | ".join(line.strip() for line in stderr.strip().splitlines()[-lines:])


def _compile_failure(compiler: Compiler, stderr: str) -> BenchmarkError:
    if _OPENMP_MISSING.search(stderr):
        hint = _OPENMP_HINTS.get(compiler.name, _OPENMP_HINTS["gcc"])
        return ToolchainMissing(
            f"{compiler.path} ({compiler.version}) has no OpenMP support: {hint}"
        )
    return BenchmarkError(
        f"compiling the kernel with {compiler.path} failed: {stderr_tail(stderr, 5)}"
    )


def build_kernel(
    source_name: str, compiler: Compiler, flags: Sequence[str], cache_dir: Path
) -> BuildResult:
    """Compile `kernels/<source_name>` or reuse the cached binary built from the same inputs.

    The binary is compiled under a temporary name in the cache directory and renamed into
    place, so a concurrent or interrupted build never leaves a half-written binary behind
    the final name.
    """
    source = kernel_source(source_name)
    source_sha = hashlib.sha256(source).hexdigest()
    key = cache_key(source, compiler, flags)
    stem = source_name.rsplit(".", 1)[0]
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchmarkError(f"cannot create kernel cache {cache_dir}: {exc}") from None
    binary = cache_dir / f"{stem}-{key[:32]}"
    if binary.is_file() and os.access(str(binary), os.X_OK):
        return BuildResult(binary=binary, cached=True, source_sha256=source_sha)

    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=".build-", dir=str(cache_dir)))
    try:
        src_path = workdir / source_name
        src_path.write_bytes(source)
        out_path = workdir / stem
        failed = run_compile(
            compiler, compile_command(compiler, flags, src_path, out_path), out_path
        )
        if failed is not None:
            raise _compile_failure(compiler, failed)
        os.replace(str(out_path), str(binary))
    finally:
        shutil.rmtree(str(workdir), ignore_errors=True)
    return BuildResult(
        binary=binary,
        cached=False,
        source_sha256=source_sha,
        compile_s=time.monotonic() - started,
    )


__all__ = [
    "CANDIDATES",
    "INSTALL_HINT",
    "BuildResult",
    "Compiler",
    "build_kernel",
    "cache_key",
    "compile_command",
    "find_compiler",
    "kernel_source",
    "native_flags",
]
