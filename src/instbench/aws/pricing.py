"""Prices from AWS: the Pricing API, spot price history, spot placement scores.

Three APIs, three answers:
  - on-demand and reserved (1- and 3-year, standard, no upfront) from the Pricing API's
    GetProducts (served only from us-east-1 / ap-south-1 / eu-central-1, hence its own
    session), filtered to Linux, shared tenancy, no pre-installed software, capacity
    status "Used" (the price of a running instance);
  - spot current and 7-day average from EC2 DescribeSpotPriceHistory (Linux/UNIX) in the
    region; the average is time-weighted per availability zone, then averaged over zones,
    because a price point lasts until the next one and points are not evenly spaced;
  - spot reliability from GetSpotPlacementScores (1..10, divided by 10), asked per type for
    one instance in the region. It needs permissions many accounts lack; a denied call
    leaves reliability unknown (None) rather than failing the publication.

Everything is read through `AwsSession` clients, so tests can inject recorded responses
with botocore event hooks (moto serves spot history but not the Pricing API).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions

from instbench.aws.regions import aws_config_errors
from instbench.aws.session import AwsSession
from instbench.errors import PricesUnavailable
from instbench.prices import InstancePrice, PriceSet

PRICING_REGION = "us-east-1"
"""The Pricing API endpoint region (it is not served from every region)."""

SPOT_WINDOW = timedelta(days=7)

_FILTERS = {
    "operatingSystem": "Linux",
    "tenancy": "Shared",
    "preInstalledSw": "NA",
    "capacitystatus": "Used",
    "licenseModel": "No License required",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _hourly(dimensions: dict[str, Any]) -> float | None:
    """USD per hour from a term's price dimensions (the 'Hrs' dimension)."""
    for dim in dimensions.values():
        if dim.get("unit") == "Hrs":
            value = dim.get("pricePerUnit", {}).get("USD")
            return float(value) if value is not None else None
    return None


def parse_price_list(items: Iterable[str]) -> tuple[float | None, float | None, float | None]:
    """(on-demand, reserved 1yr, reserved 3yr) hourly USD from GetProducts' PriceList."""
    on_demand = r1 = r3 = None
    for item in items:
        product = json.loads(item)
        terms = product.get("terms", {})
        for term in terms.get("OnDemand", {}).values():
            value = _hourly(term.get("priceDimensions", {}))
            if value is not None and value > 0:
                on_demand = value
        for term in terms.get("Reserved", {}).values():
            attrs = term.get("termAttributes", {})
            if attrs.get("PurchaseOption") != "No Upfront" or attrs.get("OfferingClass") != (
                "standard"
            ):
                continue
            value = _hourly(term.get("priceDimensions", {}))
            if value is None:
                continue
            if attrs.get("LeaseContractLength") == "1yr":
                r1 = value
            elif attrs.get("LeaseContractLength") == "3yr":
                r3 = value
    return on_demand, r1, r3


def spot_summary(
    history: Iterable[dict[str, Any]], start: datetime, end: datetime
) -> tuple[float | None, float | None]:
    """(current, time-weighted 7-day average) over availability zones, from price points."""
    by_zone: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
    for point in history:
        by_zone[str(point["AvailabilityZone"])].append(
            (point["Timestamp"].astimezone(UTC), float(point["SpotPrice"]))
        )
    currents, averages = [], []
    for zone in sorted(by_zone):
        points = sorted(by_zone[zone])
        currents.append(points[-1][1])
        total = weighted = 0.0
        for i, (ts, price) in enumerate(points):
            begin = max(ts, start)
            finish = points[i + 1][0] if i + 1 < len(points) else end
            span = (min(finish, end) - begin).total_seconds()
            if span > 0:
                total += span
                weighted += span * price
        averages.append(weighted / total if total > 0 else points[-1][1])
    if not currents:
        return None, None
    return sum(currents) / len(currents), sum(averages) / len(averages)


def unavailable_reason(exc: Exception) -> str:
    """One line on why the price APIs gave nothing: the AWS error code, or unreachable."""
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(error.get("Code") or status)
        return f"AWS price APIs answered {'HTTP ' if code.isdigit() else ''}{code}"
    return f"AWS price APIs unreachable ({type(exc).__name__})"


class AwsPriceSource:
    """`PriceSource` over AWS APIs. `pricing` is a session in PRICING_REGION; `ec2` in the
    region being priced (the region passed to `prices` must be `ec2`'s region)."""

    def __init__(
        self, pricing: AwsSession, ec2: AwsSession, now: Callable[[], datetime] = _now
    ) -> None:
        self.pricing = pricing
        self.ec2 = ec2
        self.now = now

    def prices(self, instance_types: Iterable[str], region: str) -> PriceSet:
        """Prices of `instance_types` in `region`; PricesUnavailable when AWS answers with
        an error or cannot be reached (callers see a reason, never a botocore type)."""
        try:
            return self._prices(instance_types, region)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as exc:
            raise PricesUnavailable(unavailable_reason(exc)) from exc

    def _prices(self, instance_types: Iterable[str], region: str) -> PriceSet:
        if region != self.ec2.region:
            raise ValueError(f"asked for {region} prices with an EC2 session in {self.ec2.region}")
        end = self.now()
        out: dict[str, InstancePrice] = {}
        with aws_config_errors("the AWS Pricing API"):
            for itype in sorted(set(instance_types)):
                on_demand, r1, r3 = self._list_prices(itype, region)
                current, average = self._spot(itype, end)
                out[itype] = InstancePrice(
                    on_demand=on_demand,
                    reserved_1yr=r1,
                    reserved_3yr=r3,
                    spot_current=current,
                    spot_average_7d=average,
                    spot_reliability=self._placement(itype, region),
                )
        return PriceSet(
            region=region,
            as_of=end.date(),
            source="AWS Pricing API GetProducts; EC2 DescribeSpotPriceHistory, "
            "GetSpotPlacementScores",
            instances=out,
        )

    def _list_prices(
        self, itype: str, region: str
    ) -> tuple[float | None, float | None, float | None]:
        client = self.pricing.client("pricing")
        filters = [{"Type": "TERM_MATCH", "Field": "instanceType", "Value": itype}]
        filters.append({"Type": "TERM_MATCH", "Field": "regionCode", "Value": region})
        filters += [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in _FILTERS.items()]
        items: list[str] = []
        paginator = client.get_paginator("get_products")
        for page in paginator.paginate(ServiceCode="AmazonEC2", Filters=filters):
            items.extend(page.get("PriceList", []))
        return parse_price_list(items)

    def _spot(self, itype: str, end: datetime) -> tuple[float | None, float | None]:
        start = end - SPOT_WINDOW
        paginator = self.ec2.ec2().get_paginator("describe_spot_price_history")
        history: list[dict[str, Any]] = []
        for page in paginator.paginate(
            InstanceTypes=[itype],  # type: ignore[list-item]
            ProductDescriptions=["Linux/UNIX"],
            StartTime=start,
            EndTime=end,
        ):
            history.extend(page.get("SpotPriceHistory", []))  # type: ignore[arg-type]
        return spot_summary(history, start, end)

    def _placement(self, itype: str, region: str) -> float | None:
        try:
            response = self.ec2.ec2().get_spot_placement_scores(
                InstanceTypes=[itype],
                TargetCapacity=1,
                TargetCapacityUnitType="units",
                SingleAvailabilityZone=False,
                RegionNames=[region],
            )
        except botocore.exceptions.ClientError:
            return None  # not permitted or not offered: unknown, not zero
        scores = [
            int(s["Score"])
            for s in response.get("SpotPlacementScores", [])
            if s.get("Region") == region and "Score" in s
        ]
        return max(scores) / 10.0 if scores else None
