"""Discovery against moto over HTTP: facts, offerings, listing, the CLI, and the parser.

The cross-check takes one instance type of every family moto knows (us-east-1 and
us-west-2 offerings) and compares the offline parser's architecture and vendor with
DescribeInstanceTypes: a disagreement is a parser bug.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from instbench.aws import discovery
from instbench.aws.session import AwsSession, AwsSettings
from instbench.cli import types_aws_cmd
from instbench.errors import InvalidInstanceType, UserError
from instbench.instance_types import parse_instance_type


def test_describe_types_reports_aws_facts(aws_session: AwsSession) -> None:
    facts = discovery.describe_types(aws_session, ["m7i.large", "c7g.large", "r7a.large"])
    m7i, c7g, r7a = facts["m7i.large"], facts["c7g.large"], facts["r7a.large"]
    assert (m7i.architecture, m7i.manufacturer, m7i.vcpus, m7i.memory_mib) == (
        "x86_64", "Intel", 2, 8192,
    )  # fmt: skip
    assert (c7g.architecture, c7g.manufacturer) == ("arm64", "AWS")
    assert (r7a.architecture, r7a.manufacturer) == ("x86_64", "AMD")
    assert m7i.manufacturer_source == "describe-instance-types"
    assert (m7i.default_cores, m7i.default_threads_per_core) == (1, 2)
    assert m7i.current_generation and not m7i.bare_metal


def test_old_types_pick_x86_64_over_i386(aws_session: AwsSession) -> None:
    t2 = discovery.describe_types(aws_session, ["t2.micro"])["t2.micro"]
    assert "i386" in t2.architectures
    assert t2.architecture == "x86_64"


def test_unknown_type_is_one_line_with_a_hint(aws_session: AwsSession) -> None:
    with pytest.raises(InvalidInstanceType) as err:
        discovery.describe_types(aws_session, ["m7i.large", "m7i.lrge"])
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("unknown instance type m7i.lrge in us-east-1")
    assert "did you mean m7i.large?" in message


def test_missing_manufacturer_falls_back_to_the_parser(aws_session: AwsSession) -> None:
    """Older APIs (and moto versions) omit Manufacturer: the parser fills it, labelled."""

    def strip_manufacturer(parsed: dict[str, Any], **_: Any) -> None:
        for item in parsed.get("InstanceTypes", []):
            item.get("ProcessorInfo", {}).pop("Manufacturer", None)

    aws_session.register_hook("after-call.ec2.DescribeInstanceTypes", strip_manufacturer)
    facts = discovery.describe_types(aws_session, ["c7g.large", "m7a.large"])
    assert facts["c7g.large"].manufacturer == "AWS"
    assert facts["m7a.large"].manufacturer == "AMD"
    assert {f.manufacturer_source for f in facts.values()} == {"name-parser"}


def test_offered_in_region_and_zone(aws_session: AwsSession) -> None:
    discovery.check_offered(aws_session, ["m7i.large", "c7g.large"])
    discovery.check_offered(aws_session, ["m7i.large"], availability_zone="us-east-1a")
    zones = discovery.offered_zones(aws_session, ["m7i.large"])["m7i.large"]
    assert "us-east-1a" in zones and "us-east-1e" not in zones


def test_not_offered_in_zone_is_rejected(aws_session: AwsSession) -> None:
    """moto would launch m7i.large in us-east-1e anyway; EC2 would not, so we check."""
    with pytest.raises(InvalidInstanceType) as err:
        discovery.check_offered(aws_session, ["m7i.large"], availability_zone="us-east-1e")
    assert "not offered in availability zone us-east-1e" in str(err.value)
    assert "us-east-1a" in str(err.value)


def test_not_offered_in_region_is_rejected(aws_session: AwsSession) -> None:
    # hpc7a.12xlarge exists in DescribeInstanceTypes but is not offered in us-east-1
    assert "hpc7a.12xlarge" in discovery.describe_types(aws_session, ["hpc7a.12xlarge"])
    assert "hpc7a.12xlarge" not in discovery.region_type_names(aws_session)
    with pytest.raises(InvalidInstanceType, match=r"not offered in us-east-1$"):
        discovery.check_offered(aws_session, ["m7i.large", "hpc7a.12xlarge"])


def test_list_types_filters_by_arch_and_family(aws_session: AwsSession) -> None:
    m7 = discovery.list_types(aws_session, family_glob="m7*")
    names = [f.instance_type for f in m7]
    assert {"m7i.large", "m7g.large", "m7a.large", "m7i-flex.large"} <= set(names)
    assert all(n.startswith("m7") for n in names)
    assert names.index("m7a.large") < names.index("m7a.xlarge") < names.index("m7a.2xlarge")
    arm = discovery.list_types(aws_session, arch="arm64", family_glob="m7*")
    assert arm and all(f.architecture == "arm64" for f in arm)
    assert {f.instance_type.split(".")[0] for f in arm} == {"m7g", "m7gd"}
    exact = discovery.list_types(aws_session, family_glob="c7gn")
    assert {f.instance_type.split(".")[0] for f in exact} == {"c7gn"}


@pytest.mark.parametrize(("arch", "glob"), [("sparc", None), (None, "m7;rm"), (None, "M7*")])
def test_list_types_rejects_bad_filters(aws_session: AwsSession, arch: Any, glob: Any) -> None:
    with pytest.raises(UserError):
        discovery.list_types(aws_session, arch=arch, family_glob=glob)


def test_parser_agrees_with_describe_instance_types(moto_endpoint: str) -> None:
    names: set[str] = set()
    for region in ("us-east-1", "us-west-2"):
        session = AwsSession(AwsSettings(region=region, endpoint_url=moto_endpoint))
        names.update(discovery.region_type_names(session))
    one_per_family: dict[str, str] = {}
    for name in sorted(names):
        one_per_family.setdefault(name.partition(".")[0], name)
    assert len(one_per_family) > 150
    session = AwsSession(AwsSettings(region="us-east-1", endpoint_url=moto_endpoint))
    facts = discovery.describe_types(session, one_per_family.values())
    disagreements = []
    for name, fact in sorted(facts.items()):
        info = parse_instance_type(name)
        # AWS names the macOS architectures arm64_mac / x86_64_mac; the parser reports the
        # ISA (arm64 / x86_64). Same machine code, so that is not a disagreement.
        aws_arch = fact.architecture.removesuffix("_mac")
        if info.architecture != aws_arch:
            disagreements.append(f"{name}: parser {info.architecture}, AWS {fact.architectures}")
        if fact.manufacturer and info.vendor != fact.manufacturer:
            disagreements.append(f"{name}: parser {info.vendor}, AWS {fact.manufacturer}")
    assert disagreements == []


# ---------------------------------------------------------------- the CLI


@pytest.fixture()
def cli(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    monkeypatch.setenv("COLUMNS", "200")
    app = typer.Typer()
    types_app = typer.Typer()
    types_aws_cmd.register(types_app)
    app.add_typer(types_app, name="types")
    return app


def test_cli_list_json(cli: typer.Typer) -> None:
    result = CliRunner().invoke(
        cli,
        ["types", "list", "--region", "us-east-1", "--arch", "arm64", "--family", "c7g*", "--json"],
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert rows and all(r["architecture"] == "arm64" and r["region"] == "us-east-1" for r in rows)
    assert "c7g.large" in {r["instance_type"] for r in rows}


def test_cli_describe_table_and_json(cli: typer.Typer) -> None:
    runner = CliRunner()
    table = runner.invoke(cli, ["types", "describe", "m7i.large", "c7g.large", "-r", "us-east-1"])
    assert table.exit_code == 0, table.output
    assert "m7i.large" in table.stdout and "Intel" in table.stdout and "us-east-1a" in table.stdout
    out = runner.invoke(cli, ["types", "describe", "r7a.large", "--json", "-r", "us-east-1"])
    (row,) = json.loads(out.stdout)
    assert (row["manufacturer"], row["vcpus"], row["memory_mib"]) == ("AMD", 2, 16384)
    assert "us-east-1a" in row["availability_zones"]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["types", "describe", "m7i.lrge", "-r", "us-east-1"], InvalidInstanceType),
        (["types", "describe", "m7i.large;id", "-r", "us-east-1"], InvalidInstanceType),
        (["types", "list", "-r", "useast1"], UserError),
        (["types", "list", "-r", "us-east-1", "--arch", "sparc"], UserError),
    ],
)
def test_cli_bad_input_raises_user_errors(
    cli: typer.Typer, args: list[str], error: type[Exception]
) -> None:
    result = CliRunner().invoke(cli, args)
    assert isinstance(result.exception, error)
    assert "\n" not in str(result.exception)
    assert result.stdout == ""


def test_network_figures_as_advertised(aws_session: AwsSession) -> None:
    from instbench.benchmarks import registry

    facts = discovery.describe_types(aws_session, ["m7i.large", "c5n.18xlarge"])
    m7i, c5n = facts["m7i.large"], facts["c5n.18xlarge"]
    assert m7i.network_performance == "Up to 12.5 Gigabit"
    assert [(c.index, c.baseline_gbps, c.peak_gbps) for c in m7i.network_cards] == [
        (0, 0.781, 12.5)
    ]
    params = m7i.advertised_network()
    assert params == {
        "advertised_performance": "Up to 12.5 Gigabit",
        "advertised_baseline_gbps": 0.781,
        "advertised_peak_gbps": 12.5,
    }
    # What the controller hands the agent is what the benchmark's parameters accept.
    checked = registry.info("network").validate_params(params)
    assert checked["advertised_peak_gbps"] == 12.5 and checked["role"] == "both"
    assert c5n.advertised_network()["advertised_performance"] == "100 Gigabit"
    assert m7i.to_dict()["network_cards"][0]["peak_gbps"] == 12.5
