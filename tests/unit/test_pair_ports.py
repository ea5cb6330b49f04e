"""The ports of pair attempts (fleet/pairs.py `PortBook`): fresh for every attempt, inside
the range the run's security group opens to itself, and in the sandbox claimed on this
machine's loopback, so that two runs at once (two test workers, a served sandbox) never
hand their servers the same port. Real sockets on 127.0.0.1 only."""

from __future__ import annotations

import socket

import pytest

from instbench.fleet.pairs import (
    PAIR_PORT_FIRST,
    PAIR_PORT_LAST,
    NoPairPort,
    PortBook,
    check_pair_port,
)


def _bindable(port: int) -> bool:
    """Whether another claim (a bind without SO_REUSEADDR) would get the port now."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.parametrize("port", [PAIR_PORT_FIRST - 2, PAIR_PORT_LAST, 20001, 5201, True, "20000"])
def test_a_port_outside_the_range_never_reaches_user_data(port: object) -> None:
    with pytest.raises(ValueError):
        check_pair_port(port)  # type: ignore[arg-type]


def test_every_attempt_gets_fresh_ports_in_the_range() -> None:
    book = PortBook(loopback=False)
    taken = [book.take() for _ in range(50)]
    assert len(set(taken)) == 50
    assert all(p >= PAIR_PORT_FIRST and p + 1 <= PAIR_PORT_LAST and p % 2 == 0 for p in taken)
    book.release(taken[0])
    # Given back, a port is not handed out again before the others.
    assert book.take() not in taken


def test_the_range_runs_out_with_a_clear_error() -> None:
    book = PortBook(loopback=False)
    for _ in range(PortBook.SLOTS):
        book.take()
    with pytest.raises(NoPairPort, match=f"{PAIR_PORT_FIRST}-{PAIR_PORT_LAST}"):
        book.take()


def test_loopback_claims_keep_other_runs_off_but_let_the_pair_server_listen() -> None:
    mine, other = PortBook(loopback=True), PortBook(loopback=True)
    try:
        port = mine.take()
        assert not _bindable(port) and not _bindable(port + 1)
        # Another run (another controller on this machine) never gets the same ports.
        assert all(other.take() not in (port, port + 1) for _ in range(200))
        # The pair's own server (iperf3 and netlat set SO_REUSEADDR) may listen there.
        with socket.socket() as server:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
            server.listen(1)
        mine.release(port)
        assert _bindable(port) and _bindable(port + 1)
    finally:
        mine.close()
        other.close()


def test_a_port_something_listens_on_is_skipped() -> None:
    book = PortBook(loopback=True)
    book._next = 0  # start the search at the first slot, which a listener holds
    with socket.socket() as listener:
        try:
            listener.bind(("127.0.0.1", PAIR_PORT_FIRST + 1))
        except OSError:
            pytest.skip("the port is in use on this machine already")
        listener.listen(1)
        try:
            assert book.take() != PAIR_PORT_FIRST
        finally:
            book.close()
