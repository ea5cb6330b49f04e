"""Cost of a plan from AWS prices, the dated cache, --max-cost, and the dry run.

moto does not serve the Pricing API (it answers 500) nor GetSpotPlacementScores: recorded
GetProducts answers are injected with botocore `before-send` hooks on the pricing
session, placement scores are refused the same way; spot price history is moto's own.
The dry run goes through the real CLI in the sandbox, which bills nothing.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from tests.recorded import price_list_item, recorded_response
from typer.testing import CliRunner

from instbench.aws.pricing import PRICING_REGION, AwsPriceSource
from instbench.aws.quotas import StaticQuotaSource
from instbench.aws.session import AwsSession
from instbench.cli.app import app
from instbench.fleet import cost
from instbench.fleet.plan import FleetOptions, Plan, make_plan
from instbench.storage.price_files import CachedPriceSource

NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)
ON_DEMAND = {"m7i.large": "0.1008000000", "c7g.large": "0.0725000000"}


class RecordedPricing:
    """Answers GetProducts from ON_DEMAND and refuses placement scores; counts calls."""

    def __init__(self) -> None:
        self.products: list[str] = []

    def attach(self, pricing: AwsSession, ec2: AwsSession) -> None:
        pricing.register_hook("before-send.pricing.GetProducts", self.get_products)
        ec2.register_hook("before-send.ec2.GetSpotPlacementScores", self.placement)

    def get_products(self, request: Any, **_: Any) -> AWSResponse:
        filters = {f["Field"]: f["Value"] for f in json.loads(request.body)["Filters"]}
        itype = filters["instanceType"]
        self.products.append(itype)
        items = [price_list_item(itype, ON_DEMAND[itype])] if itype in ON_DEMAND else []
        body = {"FormatVersion": "aws_v1", "PriceList": items}
        return recorded_response(200, json.dumps(body).encode(), "application/x-amz-json-1.1")

    def placement(self, request: Any, **_: Any) -> AWSResponse:
        xml = (
            "<Response><Errors><Error><Code>UnauthorizedOperation</Code><Message>no</Message>"
            "</Error></Errors><RequestID>r</RequestID></Response>"
        )
        return recorded_response(403, xml.encode(), "text/xml")


@pytest.fixture()
def bucket(aws_session: AwsSession) -> str:
    name = "instbench-cost-test"
    aws_session.s3().create_bucket(Bucket=name)
    return name


def _pricing_session(aws_session: AwsSession, attempts: int = 3) -> AwsSession:
    return AwsSession(replace(aws_session.settings, region=PRICING_REGION, max_attempts=attempts))


def _plan(aws_session: AwsSession, bucket: str, types: list[str], **kw: Any) -> Plan:
    opts = FleetOptions(instance_types=types, benchmarks=("stream",), bucket=bucket, **kw)
    return make_plan(aws_session, opts, "run-1", NOW, quota_source=StaticQuotaSource())


def test_plan_priced_from_the_pricing_api_and_cached_by_day(
    aws_session: AwsSession, bucket: str, tmp_path: Path
) -> None:
    pricing = _pricing_session(aws_session)
    recorded = RecordedPricing()
    recorded.attach(pricing, aws_session)
    today = date(2025, 3, 5)
    source = CachedPriceSource(
        AwsPriceSource(pricing, aws_session, now=lambda: NOW), tmp_path, today=lambda: today
    )
    plan = _plan(aws_session, bucket, ["m7i.large", "c7g.large"], samples=2, timeout_s=1800)
    est = cost.estimate_plan(plan, source)
    hours = cost.billed_seconds(1800) / 3600
    assert est.total_usd == pytest.approx(2 * hours * (0.1008 + 0.0725))
    assert est.as_of == today and "Pricing API" in est.source
    assert sorted(recorded.products) == ["c7g.large", "m7i.large"]
    cached = tmp_path / "prices-us-east-1-2025-03-05.json"
    assert json.loads(cached.read_text())["as_of"] == "2025-03-05"

    again = cost.estimate_plan(plan, source)  # same day: from the cache, no call
    assert again.total_usd == est.total_usd
    assert len(recorded.products) == 2


def test_max_cost_refuses_an_expensive_plan_and_passes_a_cheap_one(
    aws_session: AwsSession, bucket: str, tmp_path: Path
) -> None:
    pricing = _pricing_session(aws_session)
    RecordedPricing().attach(pricing, aws_session)
    source = CachedPriceSource(AwsPriceSource(pricing, aws_session, now=lambda: NOW), tmp_path)
    opts = FleetOptions(
        instance_types=["m7i.large"], benchmarks=("stream",), bucket=bucket, samples=3
    )
    quotas = StaticQuotaSource()
    with pytest.raises(cost.CostTooHigh, match=r"above --max-cost 0.10 USD"):
        make_plan(
            aws_session,
            replace(opts, max_cost=0.10),
            "r",
            NOW,
            quota_source=quotas,
            price_source=source,
        )
    plan = make_plan(
        aws_session, replace(opts, max_cost=1.0), "r", NOW, quota_source=quotas, price_source=source
    )
    assert plan.cost is not None and plan.cost.total_usd is not None
    assert plan.cost.total_usd < 1.0
    assert aws_session.ec2().describe_instances()["Reservations"] == []


def test_pricing_api_unavailable_means_price_unknown_and_max_cost_refuses(
    aws_session: AwsSession, bucket: str, tmp_path: Path
) -> None:
    # No hook: moto itself answers GetProducts (with a 500, it has no Pricing API).
    pricing = _pricing_session(aws_session, attempts=1)
    source = CachedPriceSource(AwsPriceSource(pricing, aws_session), tmp_path)
    plan = _plan(aws_session, bucket, ["m7i.large"])
    est = cost.estimate_plan(plan, source)
    assert est.total_usd is None and est.unknown_types == ["m7i.large"]
    assert est.unknown_reason == "AWS price APIs answered HTTP 500"
    assert list(tmp_path.iterdir()) == []  # nothing cached
    with pytest.raises(cost.CostTooHigh) as err:
        make_plan(
            aws_session,
            replace(plan.options, max_cost=5.0),
            "r",
            NOW,
            quota_source=StaticQuotaSource(),
            price_source=source,
        )
    assert str(err.value) == (
        "--max-cost 5.00 USD cannot be checked: price unknown for m7i.large "
        "(AWS price APIs answered HTTP 500); drop --max-cost to run without a cost ceiling"
    )


def test_default_source_prices_the_sandbox_at_zero(aws_session: AwsSession) -> None:
    opts = FleetOptions(["m7i.large"], ("stream",), "b", collection_method="sandbox")
    assert isinstance(cost.price_source(aws_session, opts), cost.SandboxPrices)
    aws_opts = replace(opts, collection_method="aws")
    source = cost.price_source(aws_session, aws_opts, {"XDG_CACHE_HOME": "/nonexistent"})
    assert isinstance(source, CachedPriceSource)
    assert source.cache_dir == Path("/nonexistent/instbench/prices")


# ------------------------------------------------------------------------------ CLI


@pytest.fixture()
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


def test_sandbox_dry_run_prints_vcpus_duration_cost_and_limits(cli_env: Path) -> None:
    args = ["run", "--sandbox", "-t", "m7i.large,c7g.large", "--dry-run", "--timeout", "30m"]
    result = CliRunner().invoke(app, [*args, "--vcpu-budget", "4", "--max-cost", "1"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "estimated cost, upper bound (on-demand" in out
    assert "32 min" in out  # 30 min timeout + 2 min boot
    assert "estimated cost: 0 USD (sandbox: nothing is billed)" in out
    assert "vCPU limits: Standard/on-demand quota none known; --vcpu-budget 4" in out
    assert "dry run: nothing launched" in out


def test_sandbox_refuses_a_type_over_the_budget(cli_env: Path) -> None:
    args = ["run", "--sandbox", "-t", "m7i.large", "--dry-run", "--vcpu-budget", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert str(result.exception) == (
        "m7i.large needs 2 vCPUs but --vcpu-budget is 1: it can never run; "
        "raise the budget or drop the type"
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--max-cost", "0"], "--max-cost must be a positive amount in USD, got 0.0"),
        (["--max-cost", "nan"], "--max-cost must be a positive amount in USD, got nan"),
    ],
)
def test_bad_max_cost_is_one_line(cli_env: Path, extra: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["run", "--sandbox", "-t", "m7i.large", "--dry-run", *extra])
    assert str(result.exception) == message


def test_resume_refuses_new_limits(cli_env: Path) -> None:
    result = CliRunner().invoke(app, ["run", "--resume", "r-1", "--vcpu-budget", "8"])
    assert "--resume keeps the run's --vcpu-budget and --max-cost" in str(result.exception)


def test_storage_burst_is_in_the_plan_cost_and_max_cost(
    aws_session: AwsSession, bucket: str, tmp_path: Path
) -> None:
    from instbench.benchmarks import storage

    pricing = _pricing_session(aws_session)
    RecordedPricing().attach(pricing, aws_session)
    source = CachedPriceSource(AwsPriceSource(pricing, aws_session, now=lambda: NOW), tmp_path)
    opts = FleetOptions(instance_types=["m7i.large"], benchmarks=("storage",), bucket=bucket)
    quotas = StaticQuotaSource()
    plan = make_plan(aws_session, opts, "r", NOW, quota_source=quotas)
    (task,) = plan.tasks
    # m7i.large's EBS baseline throughput is below its maximum: it bursts.
    advertised = plan.storage_advertised["m7i.large"]
    assert advertised["ebs_baseline_mbps"] < advertised["ebs_maximum_mbps"]
    assert task.burst_s == storage.BURST_S
    est = cost.estimate_plan(plan, source)
    (priced,) = est.tasks
    assert priced.seconds == cost.billed_seconds(opts.timeout_s + storage.BURST_S)
    skipped = replace(opts, params={"storage": {"burst_s": 0}})
    plan0 = make_plan(aws_session, skipped, "r", NOW, quota_source=quotas)
    assert plan0.tasks[0].burst_s == 0
    without = cost.estimate_plan(plan0, source).total_usd
    assert without is not None and est.total_usd is not None and without < est.total_usd
    # A ceiling the run fits without its burst refuses it with the burst, and says why.
    with pytest.raises(cost.CostTooHigh, match="EBS burst run adds 40 min"):
        make_plan(
            aws_session,
            replace(opts, max_cost=without * 1.01),
            "r",
            NOW,
            quota_source=quotas,
            price_source=source,
        )
    make_plan(
        aws_session,
        replace(skipped, max_cost=without * 1.01),
        "r",
        NOW,
        quota_source=quotas,
        price_source=source,
    )


def test_sandbox_dry_run_shows_the_storage_burst_run(cli_env: Path) -> None:
    args = ["run", "--sandbox", "-t", "m7i.large", "-b", "storage,stream", "--dry-run"]
    result = CliRunner().invoke(app, [*args, "--timeout", "20m", "--param", "storage.burst_s=1800"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "of which EBS burst run" in out
    cost_table = out.split("estimated cost, upper bound")[1]
    rows = {line.split("│")[1].strip(): line for line in cost_table.splitlines() if "│" in line}
    cells = [c.strip() for c in rows["m7i.large-storage-0"].split("│")]
    # │ task │ type │ instances │ vCPUs │ duration ≤ │ USD/h │ cost ≤ USD │ of which burst │
    assert cells[3] == "1"  # a storage task is one instance (a network pair is two)
    assert cells[5] == "52 min"  # 20 min timeout + 30 min burst run + 2 min boot
    assert cells[8] == "30 min, 0.0000 USD"
    cells = [c.strip() for c in rows["m7i.large-stream-0"].split("│")]
    assert cells[5] == "22 min" and cells[8] == ""
