"""Recorded AWS answers for what moto does not serve (the Pricing API, Service Quotas, spot
placement scores), for tests that inject them with botocore `before-send` hooks.

A hook that returns an `AWSResponse` replaces the HTTP exchange, so the code under test
parses these exactly as it would parse AWS's own answers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from botocore.awsrequest import AWSResponse


class _Body:
    """The raw body botocore streams a response from."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self.body


def recorded_response(
    status: int, body: bytes, content_type: str, url: str = "https://recorded"
) -> AWSResponse:
    """An HTTP answer with `body`, as a `before-send` hook returns it."""
    return AWSResponse(url, status, {"Content-Type": content_type}, _Body(body))


def price_list_item(itype: str, on_demand: str, reserved: tuple[str, str] | None = None) -> str:
    """One GetProducts PriceList item (abridged to the fields a price is read from).

    `reserved` = (1-year, 3-year) hourly prices of the standard No Upfront terms; an All
    Upfront 1-year term (hourly 0) is added beside them, as AWS lists it, so that a parser
    must pick the right one.
    """
    sku = "SKU" + itype.replace(".", "").upper()

    def dimensions(term: str, price: str) -> dict[str, Any]:
        return {
            f"{sku}.{term}.6YS6EN2CT7": {
                "unit": "Hrs",
                "pricePerUnit": {"USD": price},
                "description": f"${price} per On Demand Linux {itype} Instance Hour",
            }
        }

    def reserved_term(term: str, length: str, purchase: str, price: str) -> dict[str, Any]:
        return {
            "priceDimensions": dimensions(term, price),
            "termAttributes": {
                "LeaseContractLength": length,
                "OfferingClass": "standard",
                "PurchaseOption": purchase,
            },
        }

    terms: dict[str, Any] = {
        "OnDemand": {f"{sku}.JRTCKXETXF": {"priceDimensions": dimensions("JRTCKXETXF", on_demand)}}
    }
    if reserved is not None:
        terms["Reserved"] = {
            f"{sku}.4NA7Y494T4": reserved_term("4NA7Y494T4", "1yr", "No Upfront", reserved[0]),
            f"{sku}.BPH4J8HBKS": reserved_term("BPH4J8HBKS", "3yr", "No Upfront", reserved[1]),
            f"{sku}.7NE97W5U4E": reserved_term("7NE97W5U4E", "1yr", "All Upfront", "0.0000000000"),
        }
    return json.dumps(
        {
            "product": {
                "productFamily": "Compute Instance",
                "attributes": {"instanceType": itype, "regionCode": "us-east-1"},
                "sku": sku,
            },
            "serviceCode": "AmazonEC2",
            "terms": terms,
            "version": "20250301000000",
            "publicationDate": "2025-03-01T00:00:00Z",
        }
    )
