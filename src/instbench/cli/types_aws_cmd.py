"""`instbench types list` and `instbench types describe`: what AWS says, per region.

These sit beside the offline `types parse` in the same `types` group. They ask EC2
(DescribeInstanceTypes / DescribeInstanceTypeOfferings), so they need credentials and a
region; `AWS_ENDPOINT_URL` and `--profile` work as everywhere else. `--json` prints a
JSON list for scripts; otherwise a Rich table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import typer
from rich import box
from rich.table import Table

from instbench.aws import discovery, regions
from instbench.aws.discovery import TypeFacts
from instbench.aws.session import AwsSession, AwsSettings
from instbench.context import Context
from instbench.instance_types import parse_many

_REGION = typer.Option(None, "--region", "-r", help="AWS region (default: boto3 chain).")
_PROFILE = typer.Option(None, "--profile", help="AWS profile (default: boto3 chain).")
_JSON = typer.Option(False, "--json", help="Print a JSON list instead of a table.")


def register(types_app: typer.Typer) -> None:
    """Add `list` and `describe` to the `types` group."""
    types_app.command("list")(types_list)
    types_app.command("describe")(types_describe)


def _session(region: str | None, profile: str | None) -> AwsSession:
    if region is not None:
        regions.check_region(region)
    session = AwsSession(AwsSettings(region=region, profile=profile))
    regions.check_region(session.region)
    return session


def types_list(
    region: str | None = _REGION,
    arch: str | None = typer.Option(None, "--arch", help="arm64 or x86_64."),
    family: str | None = typer.Option(
        None, "--family", help="Family pattern such as 'm7*' or 'c7g' (quote the *)."
    ),
    as_json: bool = _JSON,
    profile: str | None = _PROFILE,
) -> None:
    """List the instance types of a region (DescribeInstanceTypes)."""
    session = _session(region, profile)
    facts = discovery.list_types(session, arch=arch, family_glob=family)
    _show(Context(), facts, session.region, as_json=as_json)


def types_describe(
    names: list[str] = typer.Argument(..., metavar="TYPE", help="Instance types, e.g. m7i.large."),
    region: str | None = _REGION,
    as_json: bool = _JSON,
    profile: str | None = _PROFILE,
) -> None:
    """Describe instance types as AWS reports them, with the zones that offer them."""
    parse_many(names)  # offline syntax check first: a typo costs no API call
    session = _session(region, profile)
    facts = discovery.describe_types(session, names)
    zones = discovery.offered_zones(session, names)
    _show(
        Context(),
        [facts[n] for n in dict.fromkeys(names)],
        session.region,
        as_json=as_json,
        zones=zones,
    )


def _show(
    ctx: Context,
    facts: Iterable[TypeFacts],
    region: str,
    *,
    as_json: bool,
    zones: dict[str, set[str]] | None = None,
) -> None:
    rows = list(facts)
    if as_json:
        out = []
        for f in rows:
            item = f.to_dict()
            item["region"] = region
            if zones is not None:
                item["availability_zones"] = sorted(zones.get(f.instance_type, set()))
            out.append(item)
        print(json.dumps(out, indent=2))
        return
    table = Table(title=f"EC2 instance types in {region} ({len(rows)})", box=box.SIMPLE_HEAVY)
    table.add_column("instance type", no_wrap=True)
    table.add_column("arch")
    table.add_column("vCPUs", justify="right")
    table.add_column("cores x threads", justify="right")
    table.add_column("memory GiB", justify="right")
    table.add_column("manufacturer")
    table.add_column("metal")
    table.add_column("current")
    if zones is not None:
        table.add_column("zones")
    for f in rows:
        cores = (
            f"{f.default_cores} x {f.default_threads_per_core}"
            if f.default_cores and f.default_threads_per_core
            else "-"
        )
        maker = f.manufacturer or "-"
        if f.manufacturer_source == "name-parser":
            maker += " (from name)"
        cells = [
            f.instance_type,
            f.architecture,
            str(f.vcpus),
            cores,
            f"{f.memory_mib / 1024:g}",
            maker,
            "yes" if f.bare_metal else "",
            "yes" if f.current_generation else "no",
        ]
        if zones is not None:
            cells.append(", ".join(sorted(zones.get(f.instance_type, set()))) or "none")
        table.add_row(*cells)
    ctx.console.print(table)
