"""A pair's user data: the client's peer address and the port are the only values the
controller adds, and a hostile one can reach neither the script nor a shell.

Values come from two places: the RunInstances answer (the server's private address,
checked by `pair_peer`) and the controller's own port. Both travel as `--param
network.peer=...` / `network.port=...`, checked by the user data's own option forms and
then quoted; the script runs for real under bash with the fakes of test_userdata.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.unit.test_userdata import calls_of, params, run_script

from instbench.errors import UserError
from instbench.fleet import userdata
from instbench.fleet.pairs import SANDBOX_PEER, pair_peer
from instbench.fleet.userdata import render_user_data

HOSTILE_ADDRESSES = [
    "10.0.1.5; reboot",
    "10.0.1.5$(touch pwned)",
    "`touch pwned`",
    "10.0.1.5\nreboot",
    "10.0.1.5 -e",
    "::1",
    "fe80::1",
    "010.000.001.005",
    "10.0.1",
    "224.0.0.1",
    "0.0.0.0",
    "127.0.0.1",
    "",
]


@pytest.mark.parametrize("address", HOSTILE_ADDRESSES)
def test_a_hostile_private_address_never_becomes_a_peer(address: str) -> None:
    with pytest.raises(ValueError):
        pair_peer(address, sandbox=False)


def test_peer_is_the_private_ipv4_or_loopback_in_the_sandbox() -> None:
    assert pair_peer("10.0.1.5", sandbox=False) == "10.0.1.5"
    assert pair_peer(None, sandbox=True) == SANDBOX_PEER == "127.0.0.1"
    # moto's invented private address is never used in the sandbox
    assert pair_peer("10.0.1.5", sandbox=True) == "127.0.0.1"
    with pytest.raises(ValueError):
        pair_peer(None, sandbox=False)


@pytest.mark.parametrize(
    "value",
    [
        "network.peer=10.0.1.5;reboot",
        "network.peer=$(reboot)",
        "network.peer=10.0.1.5 reboot",
        "network.peer=`reboot`",
        "network.peer=10.0.1.5\nreboot",
        "network.port=20000;reboot",
        "network.port=20000 $(id)",
        "network.peer='",
    ],
)
def test_hostile_peer_or_port_is_refused_by_the_user_data(value: str) -> None:
    with pytest.raises(UserError):
        render_user_data(params(benchmarks=("network",), agent_args=("--param", value)))


def test_pair_client_arguments_arrive_verbatim(tmp_path: Path) -> None:
    args = (
        "--param",
        "network.peer=10.0.1.5",
        "--param",
        "network.port=20002",
        "--param",
        "network.role=client",
    )
    script = render_user_data(params(benchmarks=("network",), agent_args=args))
    rc, calls, _ = run_script(script, tmp_path)
    assert rc == 0
    (agent,) = calls_of(calls, "python3")
    assert agent[-len(args) :] == list(args)


def test_quoting_alone_holds_against_a_hostile_peer(tmp_path: Path) -> None:
    """Defence in depth: skip validation; the hostile value still arrives as one argv."""
    hostile = "network.peer=10.0.1.5'; touch pwned; echo '$(touch pwned2)`touch pwned3`"
    p = params(benchmarks=("network",), agent_args=("--param", hostile))
    rc, calls, _ = run_script(userdata._render(p), tmp_path)
    assert rc == 0
    (agent,) = calls_of(calls, "python3")
    assert agent[-2:] == ["--param", hostile]
    assert not list(tmp_path.rglob("pwned*"))
