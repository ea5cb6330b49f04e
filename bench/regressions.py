"""Regression detection: whole-series change points (analysis/changes.py) against the
per-pair Welch test publication used before, side by side on the same synthetic series.

Synthetic series: per configuration (CV between instances 1 %, 3 %, 8 %; n = 1, 3, 5,
10 instances per weekly window; 52 weeks), one publication holds

  - 200 unchanged series (one type, benchmark, kernel, thread mode and metric each);
  - 120 series with one injected step: -5 %, -10 % and -20 %, at week 12, 24, 36 or 48,
    10 series per (size, week);
  - 50 series whose type lands on two CPU models 15 % apart, 60 % / 40 % until week 26
    and only the slower model after: the type's figure drops ~9 %, no model changed.

Measured, for both methods:

  false alarms    regressions reported on the unchanged series in the publication of
                  all 52 weeks, per 100 series-years;
  detected <= 1   share of steps reported at the step's window in the publication
                  whose newest window is the step's window;
  detected <= 2   share reported at the step's window or the next one, in the
                  publication one window later;
  mix             mix-shift series with a regression reported (want 0), and (new method)
                  those reported as a CPU-model mix change instead.

The old method, reimplemented here and nowhere else (it is no longer in instbench): each
window against the previous one of the series with a one-sided Welch t test at p < 0.05,
both windows n >= 2, no minimum effect, no correction for multiple tests, no CPU model.
A publication of the new method sees every series of the configuration at once (the
Benjamini-Hochberg family), as a real publication does. With --prefixes the target
configuration (CV 3 %, n = 5) is also published after each of the 52 weeks and every
regression ever shown on an unchanged series is counted (an alarm that a later week
withdraws still misled a reader for a week).

    .venv/bin/python bench/regressions.py              # every configuration (~1-2 min)
    .venv/bin/python bench/regressions.py --prefixes   # + the weekly publications check

Targets (issue 17) at CV 3 %, n = 5: <= 1 false alarm per 100 series-years, >= 90 % of
-10 % steps detected within 2 windows, no regression from the CPU-mix shift. Exits 1
when the new method misses one.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

from instbench.analysis.changes import Cell, ChangeReport, detect

WEEKS = 52
NULL_SERIES = 200
STEPS = (-0.05, -0.10, -0.20)
STEP_WEEKS = (12, 24, 36, 48)
STEP_REPS = 10
MIX_SERIES = 50
MIX_WEEK = 26
FAST, SLOW = 1.0, 0.85
WINDOW = [f"2025-W{w + 1:02d}" if w < 52 else f"2026-W{w - 51:02d}" for w in range(WEEKS)]


@dataclass
class Series:
    name: str
    kind: str  # null | step | mix
    values: np.ndarray  # weeks x n
    models: np.ndarray  # weeks x n, 0 fast / 1 slow
    step: float = 0.0
    step_week: int = -1


def generate(cv: float, n: int, rng: np.random.Generator) -> list[Series]:
    out: list[Series] = []
    for i in range(NULL_SERIES):
        mu = rng.uniform(10, 100)
        out.append(
            Series(f"null{i}", "null", rng.normal(mu, cv * mu, (WEEKS, n)), np.zeros((WEEKS, n)))
        )
    for size in STEPS:
        for week in STEP_WEEKS:
            for r in range(STEP_REPS):
                mu = rng.uniform(10, 100)
                level = np.where(np.arange(WEEKS) >= week, mu * (1 + size), mu)[:, None]
                vals = rng.normal(level, cv * level, (WEEKS, n))
                out.append(
                    Series(f"step{size}-{week}-{r}", "step", vals, np.zeros((WEEKS, n)), size, week)
                )
    for i in range(MIX_SERIES):
        mu = rng.uniform(10, 100)
        share_slow = np.where(np.arange(WEEKS) >= MIX_WEEK, 1.0, 0.4)[:, None]
        models = (rng.random((WEEKS, n)) < share_slow).astype(float)
        level = mu * np.where(models == 1, SLOW, FAST)
        out.append(Series(f"mix{i}", "mix", rng.normal(level, cv * level), models))
    return out


def cells(series: list[Series], weeks: int) -> list[Cell]:
    """Cells of the first `weeks` windows, stratified by CPU model."""
    out = []
    for s in series:
        key = (s.name, "stream", "triad", "all", "bandwidth")
        for w in range(weeks):
            for model in (0.0, 1.0):
                x = s.values[w][s.models[w] == model]
                if x.size:
                    out.append(
                        Cell(
                            key,
                            "fast" if model == 0 else "slow",
                            WINDOW[w],
                            int(x.size),
                            float(x.mean()),
                            float(((x - x.mean()) ** 2).sum()),
                        )
                    )
    return out


def welch_flags(s: Series, weeks: int) -> set[int]:
    """Windows the old per-pair test flags (one-sided Welch, p < 0.05, n >= 2 both)."""
    vals = s.values[:weeks]
    if vals.shape[1] < 2:
        return set()
    mean, sd = vals.mean(axis=1), vals.std(axis=1, ddof=1)
    n = vals.shape[1]
    res = sps.ttest_ind_from_stats(
        mean[1:], sd[1:], n, mean[:-1], sd[:-1], n, equal_var=False, alternative="less"
    )
    return {int(w) + 1 for w in np.nonzero(res.pvalue < 0.05)[0]}


def new_flags(report: ChangeReport) -> dict[str, set[str]]:
    flags: dict[str, set[str]] = {}
    for c in report.regressions:
        flags.setdefault(c.instance_type, set()).add(c.window)
    return flags


@dataclass
class Figures:
    false_alarms: float
    detected_1: dict[float, float]
    detected_2: dict[float, float]
    mix_regressions: int
    mix_notes: int


def run_config(cv: float, n: int, seed: int) -> tuple[Figures, Figures]:
    rng = np.random.default_rng(seed)
    series = generate(cv, n, rng)
    nulls = [s for s in series if s.kind == "null"]
    steps = [s for s in series if s.kind == "step"]
    mixes = [s for s in series if s.kind == "mix"]

    full = detect(cells(series, WEEKS))
    flags = new_flags(full)
    new_fa = sum(len(flags.get(s.name, ())) for s in nulls)
    old_fa = sum(len(welch_flags(s, WEEKS)) for s in nulls)
    new_mix = sum(1 for s in mixes if flags.get(s.name))
    old_mix = sum(1 for s in mixes if MIX_WEEK in welch_flags(s, WEEKS))
    notes = {m.instance_type for m in full.mix_changes}

    hits_new = {1: {k: 0 for k in STEPS}, 2: {k: 0 for k in STEPS}}
    hits_old = {1: {k: 0 for k in STEPS}, 2: {k: 0 for k in STEPS}}
    for week in STEP_WEEKS:
        group = [s for s in steps if s.step_week == week]
        for within in (1, 2):
            upto = week + within  # windows 0 .. week + within - 1 are published
            report = new_flags(detect(cells(series, upto)))
            wanted = {WINDOW[w] for w in range(week, upto)}
            for s in group:
                hits_new[within][s.step] += bool(report.get(s.name, set()) & wanted)
                hits_old[within][s.step] += bool(welch_flags(s, upto) & set(range(week, upto)))
    per_size = len(STEP_WEEKS) * STEP_REPS

    def share(h: dict[float, int]) -> dict[float, float]:
        return {k: v / per_size for k, v in h.items()}

    scale = 100.0 / len(nulls)
    return (
        Figures(old_fa * scale, share(hits_old[1]), share(hits_old[2]), old_mix, 0),
        Figures(new_fa * scale, share(hits_new[1]), share(hits_new[2]), new_mix, len(notes)),
    )


def weekly_publications(seed: int) -> tuple[int, int]:
    """Regressions ever shown on unchanged series over 52 weekly publications (CV 3 %,
    n = 5), new method; and the old method's flags on the same series."""
    rng = np.random.default_rng(seed)
    series = generate(0.03, 5, rng)
    nulls = {s.name for s in series if s.kind == "null"}
    shown: set[tuple[str, str]] = set()
    for weeks in range(2, WEEKS + 1):
        for name, windows in new_flags(detect(cells(series, weeks))).items():
            if name in nulls:
                shown |= {(name, w) for w in windows}
    old = sum(len(welch_flags(s, WEEKS)) for s in series if s.name in nulls)
    return len(shown), old


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--prefixes", action="store_true", help="also the 52 weekly publications")
    args = parser.parse_args()
    started = time.monotonic()
    print(
        f"{NULL_SERIES} unchanged + {len(STEPS) * len(STEP_WEEKS) * STEP_REPS} stepped + "
        f"{MIX_SERIES} CPU-mix series per configuration, {WEEKS} weekly windows"
    )
    header = (
        f"{'CV':>4} {'n':>3} {'method':<7} {'FA/100sy':>9} "
        + " ".join(f"{f'{int(k * 100)}%<=1':>8} {f'{int(k * 100)}%<=2':>8}" for k in STEPS)
        + f" {'mix regr':>9} {'mix note':>9}"
    )
    print(header)
    target: Figures | None = None
    for cv in (0.01, 0.03, 0.08):
        for n in (1, 3, 5, 10):
            old, new = run_config(cv, n, args.seed + int(cv * 1000) + n)
            for label, f in (("welch", old), ("changes", new)):
                cols = " ".join(
                    f"{100 * f.detected_1[k]:>7.0f}% {100 * f.detected_2[k]:>7.0f}%" for k in STEPS
                )
                note = "-" if label == "welch" else str(f.mix_notes)
                print(
                    f"{cv * 100:>3.0f}% {n:>3} {label:<7} {f.false_alarms:>9.2f} {cols} "
                    f"{f.mix_regressions:>5}/{MIX_SERIES} {note:>9}"
                )
            if (cv, n) == (0.03, 5):
                target = new
            sys.stdout.flush()
    print(f"elapsed {time.monotonic() - started:.0f} s")
    ok = True
    if target is not None:
        checks = {
            "false alarms <= 1 per 100 series-years": target.false_alarms <= 1.0,
            ">= 90 % of -10 % steps within 2 windows": target.detected_2[-0.10] >= 0.90,
            "CPU-mix shift raises no regression": target.mix_regressions == 0,
        }
        for what, passed in checks.items():
            print(f"target CV 3 %, n = 5: {what}: {'met' if passed else 'MISSED'}")
            ok &= passed
    if args.prefixes:
        shown, old = weekly_publications(args.seed)
        print(
            f"52 weekly publications (CV 3 %, n = 5): regressions ever shown on the "
            f"{NULL_SERIES} unchanged series: changes {shown} "
            f"({100 * shown / NULL_SERIES:.2f} per 100 series-years), welch {old} "
            f"({100 * old / NULL_SERIES:.2f})"
        )
        print(f"elapsed {time.monotonic() - started:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
