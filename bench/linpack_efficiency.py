"""LINPACK efficiency: our kernel against numpy.linalg.solve and numpy's DGEMM, same run.

For one problem size n, in alternating rounds (so a busy machine disturbs all three
alike), measures:

  ours    instbench's LINPACK kernel (kernels/linpack.c: dgetrf + dgetrs of the system
          BLAS/LAPACK found by instbench.benchmarks.linpack), one timed solve per round;
  solve   numpy.linalg.solve(A, b) on a random n x n system (numpy's own LAPACK: the
          OpenBLAS bundled in its wheel), same operation count;
  dgemm   A @ B with n x n doubles, 2 n^3 FLOPs: the rate the BLAS can sustain, which an
          LU solve approaches from below for large n.

Each figure is the best round. Prints GFLOPS and the ratios ours/solve (goal >= 0.95)
and ours/dgemm (the efficiency of the LU against the machine's practical peak), plus the
estimated theoretical peak. numpy is needed here only (the `dev` extra), never on an
instance.

    .venv/bin/python bench/linpack_efficiency.py            # n = 4000, 5 rounds
    .venv/bin/python bench/linpack_efficiency.py -n 8000 -r 3
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from instbench.agent import sysinfo  # noqa: E402
from instbench.benchmarks import linpack, peaks  # noqa: E402


def _numpy_solve(n: int, rng: np.random.Generator) -> float:
    a = rng.random((n, n)) - 0.5
    b = rng.random(n) - 0.5
    t0 = time.perf_counter()
    x = np.linalg.solve(a, b)
    elapsed = time.perf_counter() - t0
    residual = np.abs(a @ x - b).max() / (
        np.finfo(float).eps / 2 * (np.abs(a).sum(axis=1).max() * np.abs(x).max() + 0.5) * n
    )
    assert residual < linpack.RESIDUAL_THRESHOLD, residual
    return linpack.hpl_flops(n) / elapsed / 1e9


def _numpy_dgemm(n: int, rng: np.random.Generator) -> float:
    a = rng.random((n, n))
    b = rng.random((n, n))
    t0 = time.perf_counter()
    _ = a @ b
    return 2.0 * n**3 / (time.perf_counter() - t0) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=4000, help="matrix order")
    parser.add_argument("-r", "--rounds", type=int, default=5, help="alternating rounds")
    args = parser.parse_args()
    n = args.n
    library = linpack.find_library()
    if library is None:
        raise SystemExit(linpack.INSTALL_HINT)
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        _, _, built = linpack.build(Path(tmp))
        ours, solve, dgemm = [], [], []
        _numpy_solve(min(n, 500), rng)  # warm numpy's threads
        for r in range(args.rounds):
            data, _ = linpack._execute(
                built.binary, linpack.kernel_args(library, n, 1, seed=r + 1), 3600
            )
            assert linpack.residual_passes(data["scaled_residual"])
            ours.append(float(data["gflops"]))
            solve.append(_numpy_solve(n, rng))
            dgemm.append(_numpy_dgemm(n, rng))
            print(
                f"round {r + 1}: ours {ours[-1]:.2f}  numpy.solve {solve[-1]:.2f}  "
                f"dgemm {dgemm[-1]:.2f} GFLOPS",
                flush=True,
            )
    best_ours, best_solve, best_dgemm = max(ours), max(solve), max(dgemm)
    machine = sysinfo.collect()
    peak = peaks.peak(
        machine["cpu"],
        machine["architecture"],
        base_khz=peaks.read_cpufreq_khz("base_frequency"),
        max_khz=peaks.read_cpufreq_khz("cpuinfo_max_freq"),
    )
    config: Any = np.show_config(mode="dicts")
    blas = (config or {}).get("Build Dependencies", {}).get("blas", {}).get("name", "?")
    print(f"n={n}, ours: {library}; numpy {np.__version__} BLAS: {blas}")
    print(
        f"best GFLOPS: ours {best_ours:.2f}, numpy.linalg.solve {best_solve:.2f}, "
        f"numpy DGEMM {best_dgemm:.2f}"
    )
    print(f"ratio ours / numpy.solve: {best_ours / best_solve:.3f}  (goal >= 0.95)")
    print(f"ratio ours / DGEMM:       {best_ours / best_dgemm:.3f}  (LU efficiency vs DGEMM)")
    if peak["gflops"]:
        print(
            f"peak {peak['gflops']:.1f} GFLOPS ({peak['core']}: {peak['flops_per_cycle']} "
            f"FLOPs/cycle x {peak['cores']} cores x {peak['max_mhz']:.0f} MHz {peak['clock']}): "
            f"ours {best_ours / peak['gflops']:.3f}, DGEMM {best_dgemm / peak['gflops']:.3f}"
        )


if __name__ == "__main__":
    main()
