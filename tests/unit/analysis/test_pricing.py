"""Prices: the file source, the dated cache, and the AWS source on recorded responses.

The Pricing API and spot placement scores are not served by moto: their recorded
responses are injected with botocore `before-send` hooks on the AwsSession (our code runs
unchanged). Spot price history comes from the moto server itself.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from tests.factories import TablePriceSource
from tests.recorded import price_list_item, recorded_response

from instbench.aws.pricing import AwsPriceSource, parse_price_list, spot_summary
from instbench.aws.session import AwsSession, AwsSettings
from instbench.errors import UserError
from instbench.prices import InstancePrice
from instbench.storage.price_files import CachedPriceSource, FilePriceSource

NOW = datetime(2025, 3, 5, 12, 0, tzinfo=UTC)


def test_price_list_parsing_picks_no_upfront_standard_terms() -> None:
    assert parse_price_list(
        [price_list_item("m7i.large", "0.1008000000", ("0.0635", "0.0437"))]
    ) == (
        0.1008,
        0.0635,
        0.0437,
    )


def test_spot_average_is_time_weighted() -> None:
    start, end = NOW - timedelta(days=7), NOW
    history = [
        {
            "AvailabilityZone": "us-east-1a",
            "Timestamp": start - timedelta(days=1),
            "SpotPrice": "0.04",
        },
        {
            "AvailabilityZone": "us-east-1a",
            "Timestamp": end - timedelta(days=1),
            "SpotPrice": "0.11",
        },
    ]
    current, average = spot_summary(history, start, end)
    assert current == pytest.approx(0.11)
    assert average == pytest.approx((6 * 0.04 + 1 * 0.11) / 7)
    assert spot_summary([], start, end) == (None, None)


def test_aws_source_reads_all_three_apis(moto_endpoint: str) -> None:
    pricing = AwsSession(AwsSettings(region="us-east-1", endpoint_url=moto_endpoint))
    ec2 = AwsSession(AwsSettings(region="us-east-1", endpoint_url=moto_endpoint))
    calls: list[dict[str, Any]] = []

    def get_products(request: Any, **_: Any) -> AWSResponse:
        calls.append(json.loads(request.body))
        body = {
            "FormatVersion": "aws_v1",
            "PriceList": [price_list_item("m7i.large", "0.1008", ("0.0635", "0.0437"))],
        }
        return recorded_response(200, json.dumps(body).encode(), "application/x-amz-json-1.1")

    def placement(request: Any, **_: Any) -> AWSResponse:
        xml = (
            '<GetSpotPlacementScoresResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            "<requestId>r</requestId><spotPlacementScoreSet><item><region>us-east-1</region>"
            "<score>9</score></item></spotPlacementScoreSet></GetSpotPlacementScoresResponse>"
        )
        return recorded_response(200, xml.encode(), "text/xml")

    pricing.register_hook("before-send.pricing.GetProducts", get_products)
    ec2.register_hook("before-send.ec2.GetSpotPlacementScores", placement)
    result = AwsPriceSource(pricing, ec2, now=lambda: NOW).prices(["m7i.large"], "us-east-1")
    price = result.instances["m7i.large"]
    assert (price.on_demand, price.reserved_1yr, price.reserved_3yr) == (0.1008, 0.0635, 0.0437)
    assert price.spot_reliability == 0.9
    # moto serves one fixed price point per zone (0.00001, dated 2006): it holds all week.
    assert price.spot_current == pytest.approx(0.00001)
    assert price.spot_average_7d == pytest.approx(0.00001)
    assert result.as_of == date(2025, 3, 5)
    filters = {f["Field"]: f["Value"] for f in calls[0]["Filters"]}
    assert filters["instanceType"] == "m7i.large" and filters["regionCode"] == "us-east-1"
    assert filters["operatingSystem"] == "Linux" and filters["tenancy"] == "Shared"


def test_file_source_and_its_errors(tmp_path: Path) -> None:
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "as_of": "2025-03-01",
                "region": "us-east-1",
                "instances": {
                    "m7i.large": {"on_demand": 0.1008},
                    "c7g.large": {"on_demand": 0.0725},
                },
            }
        )
    )
    got = FilePriceSource(path).prices(["m7i.large"], "us-east-1")
    assert got.instances == {"m7i.large": InstancePrice(on_demand=0.1008)}
    with pytest.raises(UserError, match="is for us-east-1, not eu-west-1"):
        FilePriceSource(path).prices(["m7i.large"], "eu-west-1")
    path.write_text(
        json.dumps(
            {
                "as_of": "2025-03-01",
                "region": "us-east-1",
                "instances": {"m7i.large": {"on_demand": -1}},
            }
        )
    )
    with pytest.raises(UserError, match="must be a number >= 0"):
        FilePriceSource(path).prices(["m7i.large"], "us-east-1")


def test_cache_is_dated_and_asks_only_for_what_it_lacks(tmp_path: Path) -> None:
    inner = TablePriceSource(every=InstancePrice(on_demand=0.1), source="counting")
    day = [date(2025, 3, 5)]
    cache = CachedPriceSource(inner, tmp_path, today=lambda: day[0])
    cache.prices(["m7i.large"], "us-east-1")
    cache.prices(["m7i.large"], "us-east-1")
    cache.prices(["m7i.large", "c7g.large"], "us-east-1")
    assert inner.asked == [["m7i.large"], ["c7g.large"]]
    day[0] = date(2025, 3, 6)  # a new day: prices are read again, the old file stays
    got = cache.prices(["m7i.large"], "us-east-1")
    assert inner.asked[-1] == ["m7i.large"] and got.as_of == date(2025, 3, 6)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "prices-us-east-1-2025-03-05.json",
        "prices-us-east-1-2025-03-06.json",
    ]
