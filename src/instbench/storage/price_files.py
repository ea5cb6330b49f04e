"""Price files and the dated price cache: prices kept on disk.

Why here and not beside the price types (`instbench.prices`): reading and writing files is
storage's business, and the types must stay importable by `aws.pricing` without pulling
in storage (whose S3 store calls AWS).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from pathlib import Path

from instbench.errors import StorageError, UserError
from instbench.limits import MAX_PRICE_FILE_BYTES, read_bounded
from instbench.prices import PriceSet, PriceSource
from instbench.storage.layout import safe_component


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
