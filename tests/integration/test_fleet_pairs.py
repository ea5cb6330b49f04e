"""Pair tasks (issue 18): the `network` benchmark on a server and a client instance, in the
sandbox over moto in server mode, inspected through the moto API and the journal.

The sandbox runs two scripts at once (a server and its client must run together); the
fleet runs one pair at a time there. Faults enter only through botocore event hooks on the
controller's session (the sandbox's cloud-init has its own session and sees the real moto).
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from rich.console import Console
from tests.ec2_faults import SPOT_REASON, OutsideEnder
from tests.factories import TablePriceSource
from typer.testing import CliRunner

from instbench.aws.network import placement_group_name
from instbench.aws.quotas import StaticQuotaSource
from instbench.aws.session import AwsSession
from instbench.benchmarks import network as network_bench
from instbench.cli import run_cmd
from instbench.cli.app import app
from instbench.context import Context
from instbench.errors import QuotaExceeded
from instbench.fleet import cost
from instbench.fleet.capacity import QuotaTooSmall
from instbench.fleet.model import task_timeout_s
from instbench.fleet.pairs import PAIR_PORT_FIRST, PAIR_PORT_LAST
from instbench.fleet.plan import FleetOptions, Plan, make_plan
from instbench.fleet.run import execute, plan_run
from instbench.fleet.status import FleetOutcome
from instbench.journal import Journal
from instbench.prices import InstancePrice
from instbench.results.validate import parse_result
from instbench.sandbox.runtime import Sandbox


class PairCloud:
    def __init__(self, sandbox: Sandbox, tmp: Path) -> None:
        self.sandbox = sandbox
        self.tmp = tmp
        self.plan: Plan | None = None

    def session(self, hooks: Iterable[tuple[str, Callable[..., Any]]] = ()) -> AwsSession:
        session = AwsSession(self.sandbox.aws_settings())
        for event, handler in hooks:
            session.register_hook(event, handler)
        return session

    def run(
        self, session: AwsSession, types: list[str], **options: Any
    ) -> tuple[FleetOutcome, Journal]:
        opts = FleetOptions(
            **{
                "instance_types": types,
                "benchmarks": ("network",),
                "bucket": self.sandbox.bucket,
                "quick": True,
                "collection_method": "sandbox",
                "timeout_s": 300,
                **options,
            }
        )
        self.plan = plan_run(session, opts, datetime.now(UTC))
        journal = Journal(self.tmp / "journal.sqlite")
        outcome = execute(session, self.plan, journal, self.tmp / "data", lambda s: None, True)
        return outcome, journal

    def instances(self) -> list[dict[str, Any]]:
        ec2 = AwsSession(self.sandbox.aws_settings()).ec2()
        return [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]

    def user_data(self, instance_id: str) -> str:
        ec2 = AwsSession(self.sandbox.aws_settings()).ec2()
        attr = ec2.describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
        return base64.b64decode(attr["UserData"]["Value"]).decode()


@pytest.fixture()
def cloud(moto_endpoint: str, tmp_path: Path) -> Iterator[PairCloud]:
    with Sandbox(
        endpoint=moto_endpoint, workdir=tmp_path / "cloud", max_parallel=2, term_grace=1.0
    ) as sb:
        yield PairCloud(sb, tmp_path)


def _events(journal: Journal, run_id: str, name: str) -> list[tuple[str | None, dict[str, Any]]]:
    return [
        (task, json.loads(detail or "{}"))
        for _at, task, event, detail in journal.events(run_id)
        if event == name
    ]


def test_pair_run_stores_one_client_result_per_type_and_leaves_nothing(
    cloud: PairCloud,
) -> None:
    rules: list[dict[str, Any]] = []

    def seen_rule(params: dict[str, Any], **_: Any) -> None:
        rules.append(params)  # observed only: the call goes to moto unchanged

    session = cloud.session(
        [("before-parameter-build.ec2.AuthorizeSecurityGroupIngress", seen_rule)]
    )
    outcome, journal = cloud.run(session, ["m7i.large", "c7g.large"])
    assert outcome.succeeded, [(s.task.task_id, s.detail) for s in outcome.failures]
    rid = outcome.run_id
    # The run table's headline: both TCP figures and the median round trip.
    for status in outcome.statuses:
        assert status.document is not None
        line = run_cmd._headline(status.document)
        assert re.fullmatch(r"TCP 1 flow [\d.]+ / \d+ flows [\d.]+ Gbps, RTT [\d.]+ µs", line)

    # One inbound rule on the run's group: TCP, the pairs' ports, from the group itself.
    [rule] = rules
    group = rule["GroupId"]
    [perm] = rule["IpPermissions"]
    assert perm["IpProtocol"] == "tcp"
    assert [p["GroupId"] for p in perm["UserIdGroupPairs"]] == [group]
    assert not perm.get("IpRanges") and not perm.get("Ipv6Ranges")
    assert not perm.get("PrefixListIds")
    [(_, noted)] = _events(journal, rid, "pair-ingress-rule")
    assert noted == {
        "group_id": group,
        "ports": [perm["FromPort"], perm["ToPort"]],
        "source": "itself",
    }

    # Four instances, all of the run, all terminated; two per pair, in one zone.
    instances = cloud.instances()
    assert len(instances) == 4
    assert {i["State"]["Name"] for i in instances} == {"terminated"}
    for inst in instances:
        tags = {t["Key"]: t["Value"] for t in inst["Tags"]}
        assert tags["instbench:run-id"] == rid

    # The journal names both instances of each pair: the server's launch and end, the
    # client as the task's instance.
    launched = _events(journal, rid, "pair-server-launched")
    ended = _events(journal, rid, "pair-server-ended")
    rows = {r.task_id: r for r in journal.tasks(rid)}
    assert sorted(t for t, _ in launched) == sorted(rows) == sorted(t for t, _ in ended)
    zones = {i["InstanceId"]: i["Placement"]["AvailabilityZone"] for i in instances}
    ports = set()
    for task, detail in launched:
        server, client = detail["instance_id"], rows[task or ""].instance_id
        assert server != client and {server, client} <= set(zones)
        assert zones[server] == zones[client or ""] == rows[task or ""].availability_zone
        # Both sides in the run's cluster placement group of their zone.
        group_of = {i["InstanceId"]: i["Placement"].get("GroupName") for i in instances}
        wanted = placement_group_name(rid, zones[server])
        assert group_of[server] == group_of[client or ""] == wanted
        server_script, client_script = cloud.user_data(server), cloud.user_data(client or "")
        assert "network.role=server" in server_script
        assert "network.listen=loopback" in server_script  # never moto's private IP
        assert "network.role=client" in client_script
        assert "network.peer=127.0.0.1" in client_script
        # --quick: an 'Up to' type's burst run lasts seconds, and both sides know it.
        assert "network.burst_s=3" in client_script and "network.burst_s=3" in server_script
        [port] = re.findall(r"network\.port=(\d+)", client_script)
        assert re.findall(r"network\.port=(\d+)", server_script) == [port]
        assert perm["FromPort"] <= int(port) < int(port) + 1 <= perm["ToPort"]
        ports.add(port)
    assert len(ports) == 2  # one port per pair

    # `instbench runs show` lists each pair's server beside the task's client.
    shown = CliRunner().invoke(
        app, ["runs", "show", rid, "--journal", str(cloud.tmp / "journal.sqlite")]
    )
    assert shown.exit_code == 0, shown.output
    assert "pair servers" in shown.stdout
    for _task, detail in launched:
        assert detail["instance_id"] in shown.stdout.replace("\n", "")
    assert shown.stdout.count("concluded") == 2  # ended with its pair (the text wraps)

    # One stored result per type, the client's; the server's measures nothing.
    s3 = session.s3()
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=cloud.sandbox.bucket)["Contents"]]
    raw = [k for k in keys if k.startswith("raw/")]
    assert len(raw) == 2
    assert [k for k in keys if k.startswith("incoming/")] == []
    for key in raw:
        doc = parse_result(s3.get_object(Bucket=cloud.sandbox.bucket, Key=key)["Body"].read())
        section = doc.performance_data.network
        assert section is not None
        data = section if isinstance(section, dict) else section.model_dump()
        assert data["role"] == "client" and data["peer"] == "127.0.0.1"
        names = sorted(t["name"] for t in data["throughput"])
        assert names == ["tcp_1flow", "tcp_1flow_reverse", "tcp_nflows", "tcp_nflows_reverse"]
        assert data["latency"]["median_us"] > 0
        advertised = data["advertised"]
        assert advertised["network_performance"] == "Up to 12.5 Gigabit"
        assert advertised["peak_gbps"] == 12.5
    local_raw = list((cloud.tmp / "data" / "raw").rglob("*.json"))
    assert len(local_raw) == 2

    # Nothing left: no security group of the run (and so no rule).
    groups = session.ec2().describe_security_groups(
        Filters=[{"Name": "tag:instbench:run-id", "Values": [rid]}]
    )["SecurityGroups"]
    assert groups == []
    # No placement group either: one per zone of the plan was created, each deleted.
    left = session.ec2().describe_placement_groups(
        Filters=[{"Name": "tag:instbench:run-id", "Values": [rid]}]
    )["PlacementGroups"]
    assert left == []
    trail = [(event, detail) for _at, _task, event, detail in journal.events(rid)]
    created = sorted(d for e, d in trail if e == "placement-group-created")
    deleted = sorted(d for e, d in trail if e == "placement-group-deleted")
    # One per zone of the plan, made before any launch (a quota or permission refusal
    # ends the run before an instance runs); the zones the pairs used among them.
    assert created == deleted
    assert {placement_group_name(rid, z) for z in zones.values()} <= set(created)
    assert journal.placement_groups(rid) == []


def _error(code: str, message: str) -> tuple[AWSResponse, dict[str, Any]]:
    parsed = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 500},
    }
    return AWSResponse("https://ec2.invalid", 500, {}, None), parsed


def test_client_without_capacity_ends_its_server_and_the_pair_moves_zone(
    cloud: PairCloud,
) -> None:
    refused: list[str] = []

    def no_capacity_for_the_first_client(params: dict[str, Any], **_: Any) -> Any:
        body = params.get("body", {})
        script = base64.b64decode(body.get("UserData", "")).decode()
        if "network.role=client" in script and not refused:
            refused.append(body.get("Placement.AvailabilityZone", ""))
            return _error("InsufficientInstanceCapacity", "no capacity for the client")
        return None

    session = cloud.session([("before-call.ec2.RunInstances", no_capacity_for_the_first_client)])
    outcome, journal = cloud.run(session, ["m7i.large"])
    assert outcome.succeeded, [s.detail for s in outcome.statuses]
    rid = outcome.run_id

    [row] = journal.tasks(rid)
    assert refused and row.availability_zone != refused[0] and row.attempt >= 1
    launched = [d for _, d in _events(journal, rid, "pair-server-launched")]
    ended = [d for _, d in _events(journal, rid, "pair-server-ended")]
    assert [d["availability_zone"] for d in launched] == [refused[0], row.availability_zone]
    # Each attempt has its own ports, in the range the run's group opens to itself: the
    # second client can never reach the first server, which may still be dying.
    ports = [d["port"] for d in launched]
    assert ports[0] != ports[1]
    assert all(PAIR_PORT_FIRST <= p < p + 1 <= PAIR_PORT_LAST for p in ports)
    client_script = cloud.user_data(row.instance_id or "")
    assert re.findall(r"network\.port=(\d+)", client_script) == [str(ports[1])]
    # The first server was ended because its client could not launch, the second with
    # the pair.
    assert ended[0]["instance_id"] == launched[0]["instance_id"]
    assert "InsufficientInstanceCapacity" in ended[0]["why"]
    assert ended[1]["instance_id"] == launched[1]["instance_id"]
    # Three instances in all (two servers, one client); none left running. Each attempt
    # in its own zone's cluster group (a cluster group lives in one zone).
    instances = cloud.instances()
    assert len(instances) == 3
    groups = {i["InstanceId"]: i["Placement"].get("GroupName") for i in instances}
    assert groups[launched[0]["instance_id"]] == placement_group_name(rid, refused[0])
    assert groups[row.instance_id or ""] == placement_group_name(rid, row.availability_zone or "")
    assert {i["State"]["Name"] for i in instances} == {"terminated"}


def test_placement_group_quota_ends_the_run_before_any_instance(cloud: PairCloud) -> None:
    """EC2 refusing the run's placement group (quota used up) is a one-line error before
    any instance is launched, and the run leaves neither instance nor group behind."""

    def no_more_groups(**_: Any) -> Any:
        return _error("PlacementGroupLimitExceeded", "You've reached the limit of placement groups")

    session = cloud.session([("before-call.ec2.CreatePlacementGroup", no_more_groups)])
    with pytest.raises(QuotaExceeded) as raised:
        cloud.run(session, ["m7i.large"])
    assert "placement-group quota" in str(raised.value) and "\n" not in str(raised.value)
    assert cloud.instances() == []
    run_filter = [{"Name": "tag-key", "Values": ["instbench:run-id"]}]
    ec2 = cloud.session([]).ec2()
    assert ec2.describe_placement_groups(Filters=run_filter)["PlacementGroups"] == []
    assert ec2.describe_security_groups(Filters=run_filter)["SecurityGroups"] == []


def test_client_without_capacity_anywhere_fails_the_pair_as_a_whole(cloud: PairCloud) -> None:
    def never_a_client(params: dict[str, Any], **_: Any) -> Any:
        script = base64.b64decode(params.get("body", {}).get("UserData", "")).decode()
        if "network.role=client" in script:
            return _error("InsufficientInstanceCapacity", "none")
        return None

    session = cloud.session([("before-call.ec2.RunInstances", never_a_client)])
    outcome, journal = cloud.run(session, ["c7g.large"])
    assert not outcome.succeeded
    [row] = journal.tasks(outcome.run_id)
    assert row.state == "failed" and "InsufficientInstanceCapacity" in (row.reason or "")
    servers = [
        d["instance_id"] for _, d in _events(journal, outcome.run_id, "pair-server-launched")
    ]
    assert servers  # a server per zone tried, each ended
    instances = cloud.instances()
    assert sorted(i["InstanceId"] for i in instances) == sorted(servers)
    assert {i["State"]["Name"] for i in instances} == {"terminated"}


# ------------------------------------------------------------------ quotas and cost


def _network_plan(
    aws_session: AwsSession, params: dict[str, dict[str, Any]] | None = None, **quota: int
) -> Plan:
    bucket = "instbench-pairs-plan"
    aws_session.s3().create_bucket(Bucket=bucket)
    opts = FleetOptions(
        instance_types=["m7i.large"],
        benchmarks=("network", "stream"),
        bucket=bucket,
        params=params or {},
    )
    limits = {(name, "on-demand"): value for name, value in quota.items()}
    return make_plan(
        aws_session,
        opts,
        "r-pairs",
        datetime.now(UTC),
        quota_source=StaticQuotaSource(limits),
        price_source=TablePriceSource({"m7i.large": InstancePrice(on_demand=0.1)}),
    )


def test_quota_counts_both_instances_of_a_pair(aws_session: AwsSession) -> None:
    # m7i.large has 2 vCPUs: its pair holds 4, which a quota of 3 can never fit.
    with pytest.raises(QuotaTooSmall, match=r"m7i\.large needs 4 vCPUs"):
        _network_plan(aws_session, Standard=3)
    plan = _network_plan(aws_session, Standard=4)
    held = {t.benchmark: (t.instances, t.held_vcpus) for t in plan.tasks}
    assert held == {"network": (2, 4), "stream": (1, 2)}
    assert plan.total_vcpus == 6


def test_cost_and_dry_run_count_both_instances_of_a_pair_and_the_burst_run(
    aws_session: AwsSession,
) -> None:
    """m7i.large advertises 'Up to 12.5 Gigabit' (moto's DescribeInstanceTypes): on EC2 its
    network pair runs the default burst run, which the deadline, the cost (both instances)
    and the dry-run tables include."""
    plan = _network_plan(aws_session)
    tasks = {t.benchmark: t for t in plan.tasks}
    assert tasks["network"].burst_s == network_bench.BURST_S == 70 * 60
    assert tasks["stream"].burst_s == 0
    assert task_timeout_s(plan.options, tasks["network"]) == plan.options.timeout_s + 4200
    estimate = cost.estimate_plan(
        plan, TablePriceSource({"m7i.large": InstancePrice(on_demand=0.1)})
    )
    by_bench = {t.task_id.split("-")[1]: t for t in estimate.tasks}
    stream, network = by_bench["stream"], by_bench["network"]
    assert network.seconds == stream.seconds + 4200 and network.burst_s == 4200
    hours, net_hours = stream.seconds / 3600, network.seconds / 3600
    assert stream.cost_usd == pytest.approx(0.1 * hours)
    assert network.cost_usd == pytest.approx(2 * 0.1 * net_hours)
    assert network.burst_cost_usd == pytest.approx(2 * 0.1 * 4200 / 3600)
    assert estimate.total_usd == pytest.approx(0.1 * hours + 2 * 0.1 * net_hours)
    assert "network tasks' burst run ('Up to' types, both instances) adds 70 min" in (
        estimate.basis
    )
    plan.cost = estimate
    console = Console(record=True, width=220)
    run_cmd._print_plan(Context(console=console), plan)
    run_cmd._print_cost(Context(console=console), aws_session, plan)
    text = console.export_text()
    assert "of which network burst run" in text
    network_rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if "m7i.large-network-0" in line
    ]
    assert len(network_rows) == 2  # the plan's row and the cost's row
    plan_row, cost_row = network_rows
    assert plan_row[3:5] == ["2", "4"]  # instances, vCPUs
    # │ task │ type │ instances │ vCPUs │ duration ≤ │ USD/h │ cost ≤ USD │ of which burst │
    assert cost_row[2:5] == ["2", "4", f"{network.seconds / 60:.0f} min"]
    assert cost_row[5:] == ["0.2000", f"{0.2 * net_hours:.4f}", "70 min, 0.2333 USD"]
    [stream_row] = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in text.splitlines()
        if "m7i.large-stream-0" in line and "0.1000" in line
    ]
    assert stream_row[-1] == ""
    assert f"estimated cost: at most {0.1 * hours + 0.2 * net_hours:.4f} USD in all" in text


def test_network_burst_run_is_skipped_or_set_by_hand(aws_session: AwsSession) -> None:
    skipped = _network_plan(aws_session, {"network": {"burst_s": 0}})
    assert {t.benchmark: t.burst_s for t in skipped.tasks} == {"network": 0, "stream": 0}
    estimate = cost.estimate_plan(
        skipped, TablePriceSource({"m7i.large": InstancePrice(on_demand=0.1)})
    )
    assert "burst" not in estimate.basis
    chosen = _network_plan(aws_session, {"network": {"burst_s": 600}})
    assert {t.benchmark: t.burst_s for t in chosen.tasks} == {"network": 600, "stream": 0}


def test_server_that_dies_fails_the_pair_with_the_reason_and_leaves_nothing(
    cloud: PairCloud,
) -> None:
    """The server's script is swapped for one that powers off at once (the instance ends,
    as a crashed server would): the task fails naming the server, its client is ended."""

    def dying_server(params: dict[str, Any], **_: Any) -> None:
        script = base64.b64decode(params["UserData"]).decode()
        if "network.role=server" in script:
            params["UserData"] = base64.b64encode(b"#!/bin/bash\nexit 0\n").decode()

    session = cloud.session([("before-parameter-build.ec2.RunInstances", dying_server)])
    outcome, journal = cloud.run(session, ["m7i.large"])
    [status] = outcome.statuses
    assert status.state == "failed"
    assert "pair server" in status.detail, status.detail
    [row] = journal.tasks(outcome.run_id)
    assert row.state == "failed" and "pair server" in (row.reason or "")
    instances = cloud.instances()
    assert len(instances) == 2
    assert {i["State"]["Name"] for i in instances} == {"terminated"}
    assert [k for k in _keys(session, cloud) if k.startswith("raw/")] == []


def _keys(session: AwsSession, cloud: PairCloud) -> list[str]:
    listing = session.s3().list_objects_v2(Bucket=cloud.sandbox.bucket)
    return [o["Key"] for o in listing.get("Contents", [])]


# ------------------------------------------------------------------ spot


class _Ender(OutsideEnder):
    """Plays EC2 ending one side of a pair from outside: once an instance of that role
    runs its user data (and `ready()` says so), moto's backend is told the instance was
    terminated with the state reason `code` (the reason first, so no reader sees the end
    without it). Spot reclaiming: `code` Server.SpotInstanceTermination, spot only."""

    message = "ended from outside by the test"

    def __init__(
        self,
        cloud: PairCloud,
        role: str,
        code: str = SPOT_REASON,
        ready: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(cloud.sandbox)
        self.role = f"network.role={role}"
        self.code = code
        self.ready = ready

    def done(self) -> bool:
        return bool(self.ended)  # one instance

    def pick(self, instance: Any) -> bool:
        if self.code == SPOT_REASON and instance.lifecycle != "spot":
            return False
        script = self.cloudinit.instance_dir(instance.id) / "user-data"
        return self.role in script.read_text() and self.ready()


@pytest.mark.parametrize("side", ["server", "client"])
def test_spot_reclaiming_either_side_retries_the_pair_as_a_whole(
    cloud: PairCloud, side: str
) -> None:
    """Spot takes back the server (or the client) while the pair runs: the other side is
    ended with it, and the pair runs again as a whole on the fallback market."""
    session = cloud.session()
    with _Ender(cloud, side) as reclaimer:
        outcome, journal = cloud.run(
            session, ["m7i.large"], market="spot", spot_fallback="on-demand"
        )
    assert outcome.succeeded, [s.detail for s in outcome.statuses]
    [reclaimed] = reclaimer.ended
    [status] = outcome.statuses
    assert status.interruptions == 1 and status.market == "on-demand"
    assert status.document is not None and status.document.metadata.spot_interruptions == 1
    rid = outcome.run_id

    launched = [d["instance_id"] for _, d in _events(journal, rid, "pair-server-launched")]
    ended = {d["instance_id"]: d["why"] for _, d in _events(journal, rid, "pair-server-ended")}
    assert len(launched) == 2 and set(ended) == set(launched)
    assert ended[launched[0]] == "pair interrupted by spot"
    assert ended[launched[1]] == "pair concluded"
    if side == "server":
        assert reclaimed == launched[0]
    else:
        assert reclaimed not in launched and reclaimed != status.instance_id
    interruptions = [
        json.loads(detail or "{}").get("reason", "")
        for _at, _task, event, detail in journal.events(rid)
        if event == "running->running"
    ]
    assert len(interruptions) == 1 and SPOT_REASON in interruptions[0]
    assert ("pair server" in interruptions[0]) == (side == "server")
    # Two spot instances (the first pair), two on-demand (the second); none left.
    instances = cloud.instances()
    assert len(instances) == 4
    assert sorted(i.get("InstanceLifecycle", "on-demand") for i in instances) == [
        "on-demand",
        "on-demand",
        "spot",
        "spot",
    ]
    assert {i["State"]["Name"] for i in instances} == {"terminated"}


def test_server_ended_mid_test_fails_the_pair_with_the_reason_and_leaves_nothing(
    cloud: PairCloud,
) -> None:
    """The server instance ends (EC2 reports an internal error) after the client finished
    its first test: the task fails at once naming the server and the reason, its client is
    ended, and no result is stored."""

    def client_measured() -> bool:
        # The agent's log (the console gets it only at the end): instance/tmp/instbench.*/
        logs = cloud.sandbox.workdir.glob("i-*/tmp/instbench.*/agent.log")
        return any("network: tcp_1flow:" in log.read_text(errors="replace") for log in logs)

    session = cloud.session()
    with _Ender(cloud, "server", "Server.InternalError", client_measured) as ender:
        outcome, journal = cloud.run(session, ["c7g.large"])
    [server] = ender.ended
    [status] = outcome.statuses
    assert status.state == "failed"
    assert status.detail.startswith(f"pair server {server} terminated without serving"), (
        status.detail
    )
    assert "Server.InternalError" in status.detail
    [row] = journal.tasks(outcome.run_id)
    assert row.state == "failed" and row.reason == status.detail
    instances = cloud.instances()
    assert len(instances) == 2
    assert {i["State"]["Name"] for i in instances} == {"terminated"}
    assert [k for k in _keys(session, cloud) if k.startswith(("raw/", "incoming/"))] == []
    # Both consoles are kept beside the failure.
    consoles = sorted(p.name for p in (cloud.tmp / "data" / "logs").rglob("*.console"))
    assert len(consoles) == 2 and any(server in name for name in consoles)
