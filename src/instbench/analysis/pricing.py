"""Prices behind one small interface: where they come from is the caller's choice.

Why an interface: publication must not depend on AWS credentials (CI publishes from the
mirror), yet real prices come from three AWS APIs (Pricing, EC2 spot history, spot
placement scores; see aws/pricing.py). So publication takes a `PriceSource`; the CLI
gives it a JSON price file, or the AWS source wrapped in a dated cache.

Every price is USD per instance-hour, Linux, shared tenancy. Every price set carries the
date it was read (`as_of`): a price without a date is not published.

Price file format (also what the cache stores):
    {"as_of": "2025-03-01", "region": "us-east-1", "currency": "USD", "source": "...",
     "instances": {"m7i.large": {"on_demand": 0.1008, "reserved_1yr": 0.0635,
                   "reserved_3yr": 0.0437, "spot_current": 0.0391, "spot_average_7d": 0.0402,
                   "spot_reliability": 0.9}}}
Any price may be null or absent (unknown); it is then missing, never guessed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol

from instbench.errors import StorageError, UserError
from instbench.limits import MAX_PRICE_FILE_BYTES, read_bounded
from instbench.storage.layout import safe_component

PRICE_FIELDS = (
    "on_demand",
    "reserved_1yr",
    "reserved_3yr",
    "spot_current",
    "spot_average_7d",
    "spot_reliability",
)


@dataclass(frozen=True)
class InstancePrice:
    """Hourly prices of one type in one region (None = not known)."""

    on_demand: float | None = None
    reserved_1yr: float | None = None
    """Effective hourly price of a 1-year standard, no-upfront reservation."""
    reserved_3yr: float | None = None
    """Effective hourly price of a 3-year standard, no-upfront reservation."""
    spot_current: float | None = None
    """Most recent spot price, the mean over the region's availability zones."""
    spot_average_7d: float | None = None
    """Time-weighted mean spot price over the last 7 days, over availability zones."""
    spot_reliability: float | None = None
    """Spot placement score (1..10) / 10: how likely a spot request is to be fulfilled."""


@dataclass(frozen=True)
class PriceSet:
    """Prices of many types in one region, read on one date from one source."""

    region: str
    as_of: date
    source: str
    currency: str = "USD"
    instances: dict[str, InstancePrice] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "currency": self.currency,
            "instances": {
                t: {k: v for k, v in asdict(p).items() if v is not None}
                for t, p in sorted(self.instances.items())
            },
            "region": self.region,
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: Any, where: str) -> PriceSet:
        """Parse and check a price file; UserError naming the first problem."""
        if not isinstance(data, dict):
            raise UserError(f"price file {where}: not a JSON object")
        try:
            as_of = date.fromisoformat(str(data["as_of"]))
            region = str(data["region"])
            instances = data["instances"]
        except (KeyError, ValueError) as exc:
            raise UserError(
                f"price file {where}: needs as_of (YYYY-MM-DD), region, instances ({exc})"
            ) from exc
        if data.get("currency", "USD") != "USD":
            raise UserError(f"price file {where}: only USD prices are supported")
        if not isinstance(instances, dict):
            raise UserError(f"price file {where}: instances must be an object")
        parsed: dict[str, InstancePrice] = {}
        for itype, prices in instances.items():
            if not isinstance(prices, dict) or set(prices) - set(PRICE_FIELDS):
                raise UserError(
                    f"price file {where}: {itype}: expected only {', '.join(PRICE_FIELDS)}"
                )
            values: dict[str, float | None] = {}
            for name in PRICE_FIELDS:
                value = prices.get(name)
                if value is not None and (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                    or value < 0
                ):
                    raise UserError(f"price file {where}: {itype}.{name} must be a number >= 0")
                values[name] = None if value is None else float(value)
            rel = values["spot_reliability"]
            if rel is not None and rel > 1:
                raise UserError(f"price file {where}: {itype}.spot_reliability must be 0..1")
            parsed[str(itype)] = InstancePrice(**values)
        return cls(
            region=region,
            as_of=as_of,
            source=str(data.get("source", where)),
            instances=parsed,
        )


class PriceSource(Protocol):
    """Anything that can price instance types in a region."""

    def prices(self, instance_types: Iterable[str], region: str) -> PriceSet: ...


class FilePriceSource:
    """Prices from a JSON price file (format in the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def prices(self, instance_types: Iterable[str], region: str) -> PriceSet:
        try:
            raw = read_bounded(self.path, MAX_PRICE_FILE_BYTES, "price file")
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError) as exc:
            raise UserError(f"price file {self.path} is not valid JSON: {exc}") from exc
        price_set = PriceSet.from_json(data, str(self.path))
        if price_set.region != region:
            raise UserError(
                f"price file {self.path} is for {price_set.region}, not {region}: "
                "pass --price-region or another file"
            )
        wanted = set(instance_types)
        return PriceSet(
            region=price_set.region,
            as_of=price_set.as_of,
            source=price_set.source,
            instances={t: p for t, p in price_set.instances.items() if t in wanted},
        )


def _today() -> date:
    return datetime.now(UTC).date()


class CachedPriceSource:
    """Wrap a source; reuse what it returned today for the same region and types.

    The cache file is named by region and date (`prices-{region}-{YYYY-MM-DD}.json`), so a
    price is never served on a later day than it was read, and old files remain as a
    dated record of what was paid when.
    """

    def __init__(
        self, inner: PriceSource, cache_dir: Path, today: Callable[[], date] = _today
    ) -> None:
        self.inner = inner
        self.cache_dir = cache_dir
        self.today = today

    def path(self, region: str, day: date) -> Path:
        return self.cache_dir / f"prices-{safe_component(region, 'region')}-{day.isoformat()}.json"

    def prices(self, instance_types: Iterable[str], region: str) -> PriceSet:
        wanted = sorted(set(instance_types))
        day = self.today()
        path = self.path(region, day)
        cached: PriceSet | None = None
        if path.exists():
            cached = PriceSet.from_json(json.loads(path.read_text(encoding="utf-8")), str(path))
            if set(wanted) <= set(cached.instances):
                return PriceSet(
                    region=cached.region,
                    as_of=cached.as_of,
                    source=cached.source,
                    instances={t: cached.instances[t] for t in wanted},
                )
        missing = [t for t in wanted if cached is None or t not in cached.instances]
        fresh = self.inner.prices(missing, region)
        merged = dict(cached.instances) if cached else {}
        merged.update(fresh.instances)
        result = PriceSet(region=region, as_of=day, source=fresh.source, instances=merged)
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".tmp-{path.name}")
            tmp.write_text(json.dumps(result.to_json(), indent=2, sort_keys=True) + "\n")
            tmp.replace(path)
        except OSError as exc:
            raise StorageError(f"cannot write price cache {path}: {exc.strerror or exc}") from exc
        return PriceSet(
            region=region,
            as_of=day,
            source=fresh.source,
            instances={t: merged[t] for t in wanted if t in merged},
        )
