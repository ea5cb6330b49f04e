"""Pair tasks: a benchmark on two instances of the type at once (`Task.instances == 2`,
the `network` benchmark), a server and a client in one zone.

The orchestrator launches and watches a pair like any task, with the client as the task's
instance; this module holds what only a pair has:

- the ports of each launch attempt (`PortBook`): fresh per attempt, so the client of a
  retried pair can never reach the server of the attempt before (which may still be
  dying); inside the one range the run's security group opens to itself
  (`PAIR_PORT_FIRST..PAIR_PORT_LAST`); and in the sandbox, where every instance of every
  run on this machine shares one loopback, claimed on loopback for the pair's life so that
  no other run (another controller, another test worker) can hand out the same port;
- the agent options of each side (`pair_agent_args`) and the server's user data
  parameters (`server_params`): role, port and peer are the controller's, validated, never
  the user's;
- the server's life (`PairServers`): journalled when launched and when ended, ended with
  its pair however the pair concludes, re-attached or ended by a resume;
- what the end of a server means for its client (`server_verdict`): a server that served
  uploads its (unstored) result before it powers off, so its end says the client is at its
  last step; a server that ends without that upload died, and the pair fails at once with
  the reason, or, reclaimed by spot, is retried as a whole.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import random
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from instbench.aws import launch, network
from instbench.aws.failures import AWS_ERRORS
from instbench.aws.session import AwsSession
from instbench.benchmarks import network as network_bench
from instbench.benchmarks import registry
from instbench.fleet.collect import incoming_key, incoming_prefix, task_log_key
from instbench.fleet.model import Plan, Task
from instbench.fleet.userdata import UserDataParams, render_user_data
from instbench.journal import Journal
from instbench.storage.s3 import S3Store

PAIR_PORT_FIRST = 20000
PAIR_PORT_LAST = 29999
"""The TCP ports the run's security group opens to itself (one inbound rule) when the run
has pair tasks; every attempt of every pair gets two consecutive ports in it (the server's
iperf3 port, even, and the latency kernel's, the next one). Below Linux's ephemeral range
(32768-60999 by default), so in the sandbox no outgoing connection of this machine ever
holds one."""
SANDBOX_PEER = "127.0.0.1"
"""Where a pair's client reaches its server in the sandbox: both run on this machine, and
nothing may be sent anywhere but loopback (never moto's invented private address)."""
SERVER_RESULT = "server.json"
"""Name of the server's (never stored) result under the task's incoming/ prefix."""
SERVER_SUFFIX = "-server"
"""The server's task id is the task's plus this (its user data, log and tags)."""


def servers_in(
    events: Iterable[tuple[str, str | None, str, str | None]],
) -> list[dict[str, Any]]:
    """Every pair server a run's journal events (`Journal.events`) name, in launch order:
    task_id, instance_id, availability_zone, port, launched_at, and ended_at / why (None
    while not ended): the second instance of each pair, which the task rows do not hold."""
    servers: dict[str, dict[str, Any]] = {}
    for at, task_id, event, detail in events:
        if (
            task_id is None
            or not detail
            or event
            not in {
                "pair-server-launched",
                "pair-server-ended",
            }
        ):
            continue
        data = json.loads(detail)
        instance = data.get("instance_id")
        if not isinstance(instance, str):
            continue
        if event == "pair-server-launched":
            servers[instance] = {
                "task_id": task_id,
                "instance_id": instance,
                "availability_zone": data.get("availability_zone"),
                "port": data.get("port"),
                "launched_at": at,
                "ended_at": None,
                "why": None,
            }
        elif instance in servers:
            servers[instance].update(ended_at=at, why=data.get("why"))
    return list(servers.values())


def is_pair(task: Task) -> bool:
    """True when the task runs on a server and a client (its benchmark needs two)."""
    return task.instances > 1


def check_pair_port(port: int) -> int:
    """`port` if it and the next one lie in the pair range: what reaches user data."""
    if not isinstance(port, int) or isinstance(port, bool):
        raise ValueError(f"pair port {port!r} is not an integer")
    if port % 2 or not PAIR_PORT_FIRST <= port < port + 1 <= PAIR_PORT_LAST:
        raise ValueError(
            f"pair port {port} is outside {PAIR_PORT_FIRST}-{PAIR_PORT_LAST} (even, and the next)"
        )
    return port


def pair_peer(address: str | None, sandbox: bool) -> str:
    """The address a pair's client is given: loopback in the sandbox (both sides run on
    this machine; moto's invented private address leads nowhere), else the server's private
    IPv4 from the RunInstances answer. ValueError unless it is a unicast IPv4: nothing else
    ever reaches the client's user data."""
    if sandbox:
        return SANDBOX_PEER
    if address is None:
        raise ValueError("RunInstances gave no private address")
    try:
        parsed = ipaddress.IPv4Address(address)
    except ValueError:
        raise ValueError(f"private address {address!r} is not an IPv4 address") from None
    if parsed.is_multicast or parsed.is_unspecified or parsed.is_loopback:
        raise ValueError(f"private address {address!r} is not a unicast IPv4 address")
    return str(parsed)


class NoPairPort(RuntimeError):
    """Every port pair of the range is held (by this run, or on this machine's loopback)."""


class NoPeer(RuntimeError):
    """The server's address cannot be given to its client (not a unicast IPv4)."""


def _claim_loopback(port: int) -> socket.socket | None:
    """Hold `port` on 127.0.0.1, or None when anything else holds it (a listener, another
    controller's claim, a connection in TIME_WAIT).

    Bound without SO_REUSEADDR, the bind is the atomic test: it fails on any socket bound
    there. SO_REUSEADDR is set after, and the socket never listens, so the pair's own
    server (iperf3 and the latency kernel set SO_REUSEADDR) may still listen on the port,
    while every other claim, which binds without it, keeps failing until we close."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((SANDBOX_PEER, port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    except OSError:
        sock.close()
        return None
    return sock


class PortBook:
    """The ports of pair attempts: a fresh pair of ports for every launch attempt of the
    run, released when the attempt's pair ends.

    `loopback` (the sandbox): each port pair is also claimed on 127.0.0.1 for as long as
    the run holds it (`_claim_loopback`), and the search starts at a random place, so that
    runs on the same machine at once (tests in parallel, a served sandbox) neither share a
    port nor keep probing the same ones. On EC2 each instance has its own address and the
    search simply goes round the range."""

    SLOTS = (PAIR_PORT_LAST - PAIR_PORT_FIRST + 1) // 2

    def __init__(self, loopback: bool) -> None:
        self.loopback = loopback
        self._next = random.randrange(self.SLOTS) if loopback else 0
        self._held: dict[int, list[socket.socket]] = {}
        self._lock = threading.Lock()

    def take(self) -> int:
        """A port p (even; p and p + 1 are the pair's) that nothing holds; NoPairPort."""
        with self._lock:
            for _ in range(self.SLOTS):
                port = PAIR_PORT_FIRST + 2 * self._next
                self._next = (self._next + 1) % self.SLOTS
                if port in self._held:
                    continue
                claims: list[socket.socket] = []
                if self.loopback:
                    for p in (port, port + 1):
                        claim = _claim_loopback(p)
                        if claim is None:
                            break
                        claims.append(claim)
                    if len(claims) < 2:
                        for claim in claims:
                            claim.close()
                        continue
                self._held[port] = claims
                return check_pair_port(port)
        raise NoPairPort(
            f"no two free ports in {PAIR_PORT_FIRST}-{PAIR_PORT_LAST} for a pair's server"
        )

    def release(self, port: int | None) -> None:
        """Give `port` back (its pair ended); None or an unknown port: nothing."""
        if port is None:
            return
        with self._lock:
            for claim in self._held.pop(port, []):
                claim.close()

    def close(self) -> None:
        with self._lock:
            for claims in self._held.values():
                for claim in claims:
                    claim.close()
            self._held.clear()


def pair_agent_args(plan: Plan, task: Task, base: list[str], role: str, port: int) -> list[str]:
    """The agent options of one side of a pair: the run's (`base`, without the benchmark's
    own --param), then the benchmark's parameters with the role and port the controller
    picked (the client's peer is added once the server's address is known). The server
    listens on loopback in the sandbox; the client gets the type's advertised figures; both
    get the burst run the plan priced (`Task.burst_s`)."""
    opts = plan.options
    own: dict[str, Any] = dict(opts.params.get(task.benchmark, {}))
    own.update(role=role, port=check_pair_port(port))
    if role == "server" and opts.collection_method == "sandbox":
        own["listen"] = "loopback"
    if role == "client":
        advertised = dict(plan.network_advertised.get(task.instance_type, {}))
        performance = advertised.get("advertised_performance")
        if isinstance(performance, str):
            # 'Up to 12.5 Gigabit' holds spaces, which nothing in user data may.
            advertised["advertised_performance"] = performance.replace(
                " ", network_bench.PERFORMANCE_SPACE
            )
        own.update(advertised)
    # Both sides know the burst run the plan priced: the server waits for it too.
    own["burst_s"] = task.burst_s
    bench_args = registry.assignment_args({task.benchmark: own})
    run_args: list[str] = []
    for option, value in zip(base[::2], base[1::2], strict=True):
        if option != "--param" or not value.startswith(f"{task.benchmark}."):
            run_args += [option, value]
    return run_args + bench_args


def with_peer(params: UserDataParams, task: Task, peer: str) -> UserDataParams:
    """The client's parameters once its server's address is known."""
    return replace(
        params, agent_args=(*params.agent_args, "--param", f"{task.benchmark}.peer={peer}")
    )


def server_params(
    plan: Plan,
    task: Task,
    client: UserDataParams,
    port: int,
    result_url: str,
    log_url: str,
) -> UserDataParams:
    """The server's user data parameters: the client's, with its own task id, role and
    port, and its own upload keys (`result_url` for `SERVER_RESULT`, `log_url`)."""
    base = plan.options.agent_args_for(task.benchmark)
    return replace(
        client,
        task_id=server_task_id(task),
        agent_args=tuple(pair_agent_args(plan, task, base, "server", port)),
        result_url=result_url,
        log_url=log_url,
    )


def server_task_id(task: Task) -> str:
    return f"{task.task_id}{SERVER_SUFFIX}"


@dataclass(frozen=True)
class Server:
    """The live server of a pair: its instance, and the port the run holds for it (None
    for a server re-attached by a resume, whose port the controller did not pick)."""

    instance_id: str
    port: int | None


def server_verdict(served: bool, state: str, reason: str | None) -> tuple[str, str]:
    """What the end of a pair's server means for its pair, and why.

    - ("wait", ...): it served (its upload is there): a server ends once its client closed
      the last test, so the client's result follows; the client's own end decides.
    - ("interrupted", reason): spot reclaimed it: the pair is retried as a whole, as a
      reclaimed single instance is.
    - ("failed", why): it ended without serving: the pair fails now, with the reason.
    """
    if served:
        return "wait", ""
    if reason and launch.is_spot_interruption(reason):
        return "interrupted", reason
    return "failed", f"{state} without serving its client ({reason or 'no reason given'})"


class PairServers:
    """The server of each pair task: launched, journalled, ended (with its port given back).

    The journal names both instances of a pair: the client as the task's instance, the
    server by `pair-server-launched` and `pair-server-ended` events, which a resume reads
    (`reattach`) to re-attach or end a server launched by a controller that went away."""

    def __init__(
        self,
        session: AwsSession,
        plan: Plan,
        journal: Journal,
        s3: S3Store,
        notice: Callable[[str], None],
    ) -> None:
        self.session = session
        self.plan = plan
        self.journal = journal
        self.s3 = s3
        self.notice = notice
        self.sandbox = plan.options.collection_method == "sandbox"
        self.ports = PortBook(loopback=self.sandbox)
        self.placement_groups: dict[str, str] = {}
        """The run's cluster placement group of each zone, by zone (aws/network.py names,
        creates and deletes them); both sides of a pair launch into their zone's group,
        or into none when the zone has none. Filled before the first launch."""
        self._live: dict[str, Server] = {}
        self._lock = threading.Lock()

    @property
    def run_id(self) -> str:
        return self.plan.run_id

    def get(self, task: Task) -> str | None:
        with self._lock:
            server = self._live.get(task.task_id)
        return None if server is None else server.instance_id

    # ------------------------------------------------------------- the run

    def open_ingress(self, group_id: str | None) -> None:
        """The run's one inbound rule when it has pair tasks: its own group may reach
        itself on TCP `PAIR_PORT_FIRST..PAIR_PORT_LAST` (journalled as pair-ingress-rule;
        gone with the group). The plan refuses --security-group with pairs, so `group_id`
        is the run's own."""
        if not any(is_pair(t) for t in self.plan.tasks):
            return
        assert group_id is not None, "pair tasks run in the run's own security group"
        network.allow_pair_ports(self.session, group_id, PAIR_PORT_FIRST, PAIR_PORT_LAST)
        self.journal.note(
            self.run_id,
            None,
            "pair-ingress-rule",
            {"group_id": group_id, "ports": [PAIR_PORT_FIRST, PAIR_PORT_LAST], "source": "itself"},
        )

    def create_placement_groups(self) -> None:
        """The run's cluster placement group in each zone of the plan, when it has pair
        tasks (a cluster group lives in one zone, and a pair may move zone on capacity).

        Journalled `pending` before and `created` after each create, so a controller that
        dies in between leaves a name for `instbench cleanup`. Created before any launch:
        a used-up quota or a missing permission ends the run before an instance runs."""
        if not any(is_pair(t) for t in self.plan.tasks):
            return
        zones = sorted({p.availability_zone for p in self.plan.placements})
        for zone in zones:
            name = network.placement_group_name(self.run_id, zone)
            self.journal.set_placement_group(self.run_id, name, "pending")
            network.create_run_placement_group(
                self.session, self.run_id, zone, self.plan.expires_at
            )
            self.journal.set_placement_group(self.run_id, name, "created")
            self.placement_groups[zone] = name

    def close(self) -> None:
        """At the end of the run: every port given back, and what servers uploaded under
        incoming/ deleted (they measure nothing; one may arrive after its pair's own
        delete, until its instance is gone)."""
        self.ports.close()
        if not any(is_pair(t) for t in self.plan.tasks):
            return
        try:
            for key in self.s3.keys(incoming_prefix(self.run_id)):
                if key.endswith(f"/{SERVER_RESULT}"):
                    self.s3.delete(key)
        except AWS_ERRORS as exc:  # a staging copy only: never what fails the cleanup
            self.notice(f"warning: could not delete pair servers' uploads ({exc})")

    # ------------------------------------------------------------ one pair

    def take_port(self, task: Task) -> int | None:
        """A fresh port for this attempt of a pair task (None for any other task)."""
        return self.ports.take() if is_pair(task) else None

    def launch(
        self,
        task: Task,
        client: launch.LaunchSpec,
        params: UserDataParams,
        port: int,
        expires_s: int,
    ) -> launch.LaunchSpec:
        """Launch the server of one attempt (same zone, market and group as its client;
        its own id, role and upload keys) and return the client's spec with the server's
        address. CapacityError (the port given back) when EC2 refuses the server;
        NoPeer (the server ended) when its address cannot be given to a client."""
        rid = self.run_id
        server_id = server_task_id(task)
        server = server_params(
            self.plan,
            task,
            params,
            port,
            result_url=self.s3.presign_put(
                incoming_key(rid, task.task_id, SERVER_RESULT), expires_s, "application/json"
            ),
            log_url=self.s3.presign_put(task_log_key(rid, server_id), expires_s, "text/plain"),
        )
        # Both sides in the run's cluster placement group of their zone (when it has one).
        group = self.placement_groups.get(client.availability_zone or "")
        spec = replace(
            client, task_id=server_id, user_data=render_user_data(server), placement_group=group
        )
        try:
            instance_id, address = launch.launch_instance_addressed(self.session, spec)
        except BaseException:
            self.ports.release(port)
            raise
        zone = client.availability_zone or ""
        with self._lock:
            self._live[task.task_id] = Server(instance_id, port)
        self.journal.note(
            rid,
            task.task_id,
            "pair-server-launched",
            {"instance_id": instance_id, "availability_zone": zone, "port": port},
        )
        try:
            peer = pair_peer(address, self.sandbox)
        except ValueError as exc:
            self.end(task, "no usable address")
            raise NoPeer(f"{zone}: server {instance_id}: {exc}") from None
        return replace(
            client, user_data=render_user_data(with_peer(params, task, peer)), placement_group=group
        )

    def verdict(self, task: Task, server: str, state: str, reason: str | None) -> tuple[str, str]:
        """`server_verdict` for the pair's server seen ended: whether it served is read
        from its upload, which precedes its power-off."""
        key = incoming_key(self.run_id, task.task_id, SERVER_RESULT)
        served = self.s3.head(key) is not None
        verdict, why = server_verdict(served, state, reason)
        if verdict == "failed":
            why = f"pair server {server} {why}"
        return verdict, why

    def reattach(self, task: Task) -> str | None:
        """The server the journal says was launched for `task` and never ended (the
        controller went away between the two), now held again; None if there is none."""
        live: str | None = None
        for _at, task_id, event, detail in self.journal.events(self.run_id):
            if task_id != task.task_id or not detail:
                continue
            if event == "pair-server-launched":
                live = json.loads(detail).get("instance_id")
            elif event == "pair-server-ended":
                live = None
        if live is not None:
            with self._lock:
                self._live[task.task_id] = Server(live, None)
        return live

    def end(self, task: Task, why: str, before: Callable[[str], None] | None = None) -> None:
        """Terminate the pair's server, delete its staged upload and give its port back;
        `before(instance_id)` runs first (a stored pair lets its server upload its log and
        power off; a failed one keeps its console). Nothing when the task has no live
        server."""
        with self._lock:
            server = self._live.pop(task.task_id, None)
        if server is None:
            return
        try:
            if before is not None:
                with contextlib.suppress(*AWS_ERRORS):
                    before(server.instance_id)
            self.journal.note(
                self.run_id,
                task.task_id,
                "pair-server-ended",
                {"instance_id": server.instance_id, "why": why},
            )
            try:
                launch.terminate_instance(self.session, server.instance_id)
            except AWS_ERRORS as exc:
                self.notice(
                    f"warning: task {task.task_id}: could not terminate its server "
                    f"{server.instance_id} ({type(exc).__name__}: {exc}); the end-of-run "
                    "sweep tries again"
                )
            with contextlib.suppress(*AWS_ERRORS):
                self.s3.delete(incoming_key(self.run_id, task.task_id, SERVER_RESULT))
        finally:
            # In the sandbox a port is claimed again only once the dying server's
            # processes are gone: a claim fails on any socket still bound there.
            self.ports.release(server.port)
