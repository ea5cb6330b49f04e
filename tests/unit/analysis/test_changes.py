"""Change detection (analysis/changes.py): quiet on noise, a real step published once with
its size, a CPU-mix shift not called a regression, untested series listed with the reason.

Synthetic results are built with tests/factories.py into a mirror and published the way
`instbench publish` does; the figures of each sample are drawn from a seeded generator,
so every assertion has a fixed answer.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps
from tests.factories import result_document, store_documents

from instbench.analysis import changes
from instbench.analysis.ingest import ingest
from instbench.analysis.publish import publish

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)  # Monday of ISO week 10
TYPES = [f"m{g}i.{s}" for g in (6, 7) for s in ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge")]
STEP_TYPE = "m7i.xlarge"
STEP_WEEK = 6  # 2025-W16
INSTBENCH = str(Path(sys.executable).parent / "instbench")


def _docs(
    types: list[str],
    weeks: int,
    per_week: int,
    cv: float,
    seed: int,
    step: dict[str, tuple[int, float]] | None = None,
) -> list[dict[str, Any]]:
    """`per_week` instances of each type per week, triad ~ N(mu, cv * mu); `step` maps a
    type to (first week of the step, relative change)."""
    rng = random.Random(seed)
    docs = []
    for t_index, itype in enumerate(types):
        mu = 30.0 + 7.0 * t_index
        for week in range(weeks):
            first, size = (step or {}).get(itype, (weeks, 0.0))
            level = mu * (1 + size) if week >= first else mu
            for i in range(per_week):
                docs.append(
                    result_document(
                        itype,
                        bandwidth_gbps=rng.gauss(level, cv * level),
                        sample=i,
                        run_id=f"w{week}",
                        timestamp=T0 + timedelta(weeks=week, hours=i),
                    )
                )
    return docs


def _publish(tmp: Path, docs: list[dict[str, Any]], **options: Any) -> tuple[Path, dict[str, Any]]:
    mirror, out = tmp / "mirror", tmp / "out"
    store_documents(mirror, docs)
    with ingest(mirror) as ds:
        index = publish(ds, out, **options).index
    return out, index


@pytest.fixture(scope="module")
def unchanged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """10 unchanged types x 10 weeks x 5 instances, CV 3 %."""
    return _publish(tmp_path_factory.mktemp("unchanged"), _docs(TYPES, 10, 5, 0.03, seed=3))


def test_unchanged_types_publish_no_change(unchanged: tuple[Path, dict[str, Any]]) -> None:
    _, index = unchanged
    assert index["regressions"] == []
    assert index["improvements"] == []
    assert index["cpuMixChanges"] == []
    detection = index["changeDetection"]
    assert detection["minEffect"] == 0.05 and detection["falseDiscoveryRate"] == 0.05
    # Every stratum was tested: 10 types x 4 kernels x 2 thread modes, one CPU model each.
    assert detection["tests"] == 80 and index["untested"] == []


def test_a_step_is_published_once_with_its_size_and_interval(tmp_path: Path) -> None:
    docs = _docs(TYPES, 10, 5, 0.03, seed=3, step={STEP_TYPE: (STEP_WEEK, -0.15)})
    _, index = _publish(tmp_path, docs)
    regs = index["regressions"]
    assert {r["instance_type"] for r in regs} == {STEP_TYPE}
    # Every kernel with all threads moved (the factory scales them together; its single
    # thread figure is capped at 20 GB/s, so that one did not), each reported once, at
    # the week of the step.
    assert sorted((r["test"], r["thread_mode"]) for r in regs) == [
        (k, "all") for k in ("add", "copy", "scale", "triad")
    ]
    assert {r["window"] for r in regs} == {"2025-W16"}
    assert {r["previous_window"] for r in regs} == {"2025-W15"}
    for r in regs:
        assert r["worse"] is True
        assert r["ci_low"] < r["change"] < r["ci_high"] < -0.05
        assert r["ci_low"] < -0.15 < r["ci_high"]
        assert (r["n_before"], r["n_after"]) == (30, 20)
        assert r["first_window"] == "2025-W10" and r["last_window"] == "2025-W19"
        assert r["q_value"] <= 0.05
    assert index["improvements"] == [] and index["cpuMixChanges"] == []


def test_a_step_after_a_week_of_one_instance_is_still_found(tmp_path: Path) -> None:
    """The per-pair test could not compare a week with n = 1; segments pool windows."""
    docs = _docs(TYPES[:3], 10, 5, 0.03, seed=4, step={"m6i.xlarge": (STEP_WEEK, -0.15)})
    lone = T0 + timedelta(weeks=STEP_WEEK - 1)
    docs = [
        d
        for d in docs
        if not (
            d["metadata"]["instance_type"] == "m6i.xlarge"
            and d["metadata"]["timestamp"][:10] == lone.date().isoformat()
            and d["metadata"]["sample"] > 0
        )
    ]
    _, index = _publish(tmp_path, docs)
    triad = [r for r in index["regressions"] if (r["test"], r["thread_mode"]) == ("triad", "all")]
    assert [(r["instance_type"], r["window"], r["previous_window"]) for r in triad] == [
        ("m6i.xlarge", "2025-W16", "2025-W15")
    ]
    assert triad[0]["n_before"] == 26 and triad[0]["ci_low"] < -0.15 < triad[0]["ci_high"]


def test_a_cpu_model_mix_shift_is_not_a_regression(tmp_path: Path) -> None:
    """m5.large lands on two CPU models, 15 % apart; from week 5 on only on the slower.
    Within each model nothing changed: the pooled drop is reported as a mix change."""
    rng = random.Random(5)
    docs = []
    for week in range(10):
        models = ["Cascade Lake"] * 3 + ["Skylake"] * 2 if week < 5 else ["Skylake"] * 5
        for i, model in enumerate(models):
            level = 40.0 if model == "Cascade Lake" else 34.0
            doc = result_document(
                "m5.large",
                bandwidth_gbps=rng.gauss(level, 0.03 * level),
                sample=i,
                run_id=f"w{week}",
                timestamp=T0 + timedelta(weeks=week, hours=i),
            )
            doc["system_info"]["cpu"]["model_name"] = model
            docs.append(doc)
    _, index = _publish(tmp_path, docs)
    assert index["regressions"] == [] and index["improvements"] == []
    mix = [m for m in index["cpuMixChanges"] if (m["test"], m["thread_mode"]) == ("triad", "all")]
    assert len(mix) == 1
    assert mix[0]["window"] == "2025-W15"
    assert mix[0]["message"] == "CPU model mix changed (Cascade Lake 3 of 5 → 0 of 5)"
    assert mix[0]["change"] < -0.05
    # Cascade Lake had 5 weeks, then none: tested within itself, nothing found.
    assert not any(u["cpu_model"] == "Cascade Lake" for u in index["untested"])


def test_untested_series_are_listed_with_the_reason(tmp_path: Path) -> None:
    docs = _docs(["m7i.large"], 3, 3, 0.03, seed=1)
    docs.append(result_document("c7g.large", run_id="one", timestamp=T0))
    docs += [
        result_document("r7i.large", run_id=f"w{w}", timestamp=T0 + timedelta(weeks=w))
        for w in range(2)
    ]
    _, index = _publish(tmp_path, docs)
    why = {
        (u["instance_type"], u["test"], u["thread_mode"]): u["reason"] for u in index["untested"]
    }
    assert why[("c7g.large", "triad", "all")] == (
        "one window only (2025-W10, n = 1): nothing to compare"
    )
    assert why[("r7i.large", "triad", "all")] == (
        "no window boundary leaves 2 samples on each side (n per window: 1, 1)"
    )
    assert not any(t == "m7i.large" for t, _, _ in why)  # 9 samples over 3 weeks: tested
    assert len(index["untested"]) == 2 * 8  # both types, 4 kernels x 2 thread modes


def test_window_summaries_have_median_intervals_from_n_6(tmp_path: Path) -> None:
    docs = _docs(["m7i.large"], 1, 6, 0.03, seed=2)
    docs += _docs(["c7g.large"], 1, 5, 0.03, seed=2)
    out, _ = _publish(tmp_path, docs)
    for window in ("2025-W10", "2025-03"):
        summary = json.loads((out / window / "summary.json").read_text())
        rows = {(g["instance_type"], g["test"], g["thread_mode"]): g for g in summary["groups"]}
        six = rows[("m7i.large", "triad", "all")]
        assert six["n"] == 6
        # Ranks 1 and 6 at n = 6 (P(B <= 0) = 1/64 <= 2.5 %): the minimum and the maximum.
        assert (six["median_ci_low"], six["median_ci_high"]) == (six["min"], six["max"])
        five = rows[("c7g.large", "triad", "all")]
        assert five["n"] == 5 and five["median_ci_low"] is None
        assert "n < 6" in summary["notes"]["median_ci"]


def _cells(series: dict[str, list[list[float]]], model: str | None = "A") -> list[changes.Cell]:
    out = []
    for itype, weeks in series.items():
        for w, values in enumerate(weeks):
            x = np.asarray(values)
            out.append(
                changes.Cell(
                    (itype, "stream", "triad", "all", "bandwidth"),
                    model,
                    f"2025-W{10 + w:02d}",
                    len(values),
                    float(x.mean()),
                    float(((x - x.mean()) ** 2).sum()),
                )
            )
    return out


def test_the_minimum_effect_holds_back_small_significant_changes() -> None:
    rng = np.random.default_rng(7)
    weeks = [list(rng.normal(40.0 * (0.97 if w >= 5 else 1.0), 0.2, 20)) for w in range(10)]
    cells = _cells({"m7i.large": weeks})
    assert changes.detect(cells).changes == []  # -3 %: certain, but under 5 %
    found = changes.detect(cells, min_effect=0.02).changes
    assert [(c.window, c.worse) for c in found] == [("2025-W15", True)]
    assert found[0].change == pytest.approx(-0.03, abs=0.005)
    with pytest.raises(ValueError, match="min_effect"):
        changes.detect(cells, min_effect=1.5)


def test_latency_going_up_is_worse() -> None:
    weeks = [[80.0, 81.0, 79.5], [80.5, 79.0, 80.2], [95.0, 96.0, 94.5]]
    cells = [
        changes.Cell(("m7i.large", "latency", "memory", "single", "latency"), *rest)
        for c in _cells({"x": weeks})
        for rest in [(c.cpu_model, c.window, c.n, c.mean, c.m2)]
    ]
    (found,) = changes.detect(cells).changes
    assert found.worse and found.change > 0.15


def test_the_interval_is_scipys_student_interval_over_the_mean_before() -> None:
    rng = np.random.default_rng(11)
    before, after = rng.normal(40, 1.2, 25), rng.normal(36, 1.2, 5)
    change, low, high = changes.relative_interval(list(before), list(after))
    ref = sps.ttest_ind(after, before, equal_var=True).confidence_interval(0.95)
    base = before.mean()
    assert change == pytest.approx((after.mean() - base) / base, rel=1e-9)
    assert (low, high) == pytest.approx((ref.low / base, ref.high / base), rel=1e-9)


def test_the_interval_covers_the_true_change_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(13)
    hits = 0
    for _ in range(2000):
        before, after = rng.normal(40, 1.2, 30), rng.normal(34, 1.2, 5)
        _, low, high = changes.relative_interval(list(before), list(after))
        hits += low <= 34 / 40 - 1 <= high
    assert 0.93 <= hits / 2000 <= 0.97


def test_benjamini_hochberg_runs_over_every_series_of_the_publication() -> None:
    """A step that one series alone would show is held back among many unchanged ones
    when its evidence is weak, and the count of tests is that of every stratum."""
    rng = np.random.default_rng(17)
    noise = {f"t{i}.large": [list(rng.normal(40, 1.2, 5)) for _ in range(10)] for i in range(50)}
    report = changes.detect(_cells(noise))
    assert report.tests == 50 and report.changes == []
    weak = {"s.large": [list(rng.normal(40 * (0.93 if w >= 8 else 1), 1.2, 2)) for w in range(10)]}
    alone = changes.detect(_cells(weak))
    among = changes.detect(_cells({**noise, **weak}))
    assert among.tests == 51
    # The same p-value, more tests: the adjusted q is larger among many.
    assert len(among.changes) <= len(alone.changes)


def test_publish_refuses_a_minimum_effect_outside_0_to_1(tmp_path: Path) -> None:
    (tmp_path / "raw").mkdir()
    proc = subprocess.run(
        [INSTBENCH, "publish", "--input", str(tmp_path), "--output", str(tmp_path / "out"),
         "--min-effect", "5"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "--min-effect" in proc.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("seed", range(5))
def test_benjamini_hochberg_is_scipys(seed: int) -> None:
    """changes._bh (written with numpy to keep scipy.stats out of a publication) gives
    scipy.stats.false_discovery_control's q-values, ties and p = 1 included."""
    rng = np.random.default_rng(seed)
    p = rng.uniform(0, 1, 200) ** 3
    p[:20] = p[20:40]  # ties
    p[-5:] = 1.0
    np.testing.assert_allclose(
        changes._bh(list(p)), sps.false_discovery_control(p, method="bh"), rtol=1e-12, atol=0
    )
    assert changes._bh([]) == []


@pytest.mark.parametrize("df", [1, 2, 5, 30, 1000, 10**6])
def test_t_distribution_is_scipy_stats(df: int) -> None:
    """The t tail and quantile from scipy.special are scipy.stats.t's, tails included."""
    for t in (0.0, 0.5, 2.0, 8.0, 40.0):
        assert changes._t_sf(t, df) == pytest.approx(sps.t.sf(t, df), rel=1e-12, abs=1e-300)
    for q in (0.5, 0.9, 0.975, 0.999999):
        assert changes._t_ppf(q, df) == pytest.approx(sps.t.ppf(q, df), rel=1e-12)
