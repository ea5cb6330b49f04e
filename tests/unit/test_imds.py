"""IMDSv2 identity against a real HTTP server on 127.0.0.1; never any traffic off this machine.

A socket-level audit hook watches every connect made by the test's own thread, so the tests
that must not touch the network prove it rather than trust it.
"""

from __future__ import annotations

import json
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from instbench.agent import imds
from instbench.results.schema import Ec2Identity

# ------------------------------------------------------------------ connect audit


class _Audit:
    connects: list[Any] | None = None
    thread: int | None = None
    block: bool = False


def _audit_hook(event: str, args: tuple[Any, ...]) -> None:
    if event != "socket.connect" or _Audit.connects is None:
        return
    if threading.get_ident() != _Audit.thread:
        return
    _Audit.connects.append(args[1])
    if _Audit.block:
        raise ConnectionRefusedError("connection blocked by the test's audit hook")


sys.addaudithook(_audit_hook)  # cannot be removed; inert unless a test arms it


@pytest.fixture()
def connects() -> Iterator[list[Any]]:
    """Addresses this thread connects to during the test."""
    _Audit.connects, _Audit.thread, _Audit.block = [], threading.get_ident(), False
    try:
        yield _Audit.connects
    finally:
        _Audit.connects, _Audit.thread, _Audit.block = None, None, False


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # tests/conftest.py disables IMDS for the whole suite; these tests decide for themselves.
    for var in (imds.ENV_DISABLED, imds.ENV_ENDPOINT, imds.ENV_ENDPOINT_MODE):
        monkeypatch.delenv(var, raising=False)


# ------------------------------------------------------------------- fake IMDSv2

DOC = {
    "accountId": "123456789012",
    "architecture": "x86_64",
    "availabilityZone": "us-east-1b",
    "imageId": "ami-0abcdef1234567890",
    "instanceId": "i-0abc1234def567890",
    "instanceType": "m7i.large",
    "privateIp": "10.0.0.12",
    "region": "us-east-1",
    "version": "2017-09-30",
}


class FakeImds:
    """IMDSv2 as EC2 implements it: PUT for a token (TTL header required), GET with it.

    ``documents`` maps a path prefix ("" or "i-0abc/") to that instance's identity
    document, like the sandbox serving one prefix per simulated instance.
    """

    def __init__(self, documents: dict[str, Any]) -> None:
        self.documents = documents
        self.tokens: set[str] = set()
        self.requests: list[tuple[str, str, Any]] = []
        self.reject_tokens = False
        self.body_override: bytes | None = None
        self.busy_puts = 0
        """The next this-many token requests get HTTP 503 (IMDS throttled or overloaded)."""
        self.slow_puts: list[float] = []
        """Seconds each next token request waits before answering (one entry per request)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes, ctype: str = "text/plain") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _prefix(self, suffix: str) -> str | None:
                for prefix in fake.documents:
                    if self.path == "/" + prefix + suffix:
                        return prefix
                return None

            def do_PUT(self) -> None:
                fake.requests.append(("PUT", self.path, self.headers))
                if self._prefix(imds.TOKEN_PATH) is None:
                    return self._send(404, b"Not Found")
                if fake.busy_puts > 0:
                    fake.busy_puts -= 1
                    return self._send(503, b"Service Unavailable")
                if fake.slow_puts:
                    time.sleep(fake.slow_puts.pop(0))
                ttl = self.headers.get(imds.TOKEN_TTL_HEADER, "")
                if not ttl.isdigit() or not 1 <= int(ttl) <= 21600:
                    return self._send(400, b"Bad Request")
                token = secrets.token_urlsafe(32)
                fake.tokens.add(token)
                self._send(200, token.encode())

            def do_GET(self) -> None:
                fake.requests.append(("GET", self.path, self.headers))
                prefix = self._prefix(imds.DOCUMENT_PATH)
                if prefix is None:
                    return self._send(404, b"Not Found")
                token = self.headers.get(imds.TOKEN_HEADER)
                if fake.reject_tokens or token not in fake.tokens:
                    return self._send(401, b"Unauthorized")
                body = fake.body_override or json.dumps(fake.documents[prefix]).encode()
                self._send(200, body, "application/json")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> FakeImds:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def fake() -> Iterator[FakeImds]:
    other = dict(DOC, instanceId="i-0fff", instanceType="c7g.large", availabilityZone="us-east-1c")
    with FakeImds({"": DOC, "i-0abc/": DOC, "i-0fff/": other}) as server:
        yield server


def _logger() -> tuple[list[str], Any]:
    lines: list[str] = []
    return lines, lines.append


# ------------------------------------------------------------------------ tests


def test_token_flow_returns_identity(fake: FakeImds) -> None:
    lines, log = _logger()
    identity = imds.fetch_identity(fake.url, timeout=2.0, log=log)
    assert identity == {
        "instance_id": "i-0abc1234def567890",
        "instance_type": "m7i.large",
        "availability_zone": "us-east-1b",
        "region": "us-east-1",
        "ami_id": "ami-0abcdef1234567890",
        "account_id": "123456789012",
    }
    Ec2Identity.model_validate(identity)
    (put, _, put_headers), (get, _, get_headers) = fake.requests
    assert (put, get) == ("PUT", "GET")
    assert put_headers.get(imds.TOKEN_TTL_HEADER) == "21600"
    assert get_headers.get(imds.TOKEN_HEADER) in fake.tokens
    assert "i-0abc1234def567890" in lines[-1]


@pytest.mark.parametrize("suffix", ["i-0fff/", "i-0fff"])
def test_path_prefixed_endpoint(fake: FakeImds, suffix: str) -> None:
    identity = imds.fetch_identity(fake.url + suffix, timeout=2.0)
    assert identity is not None
    assert (identity["instance_id"], identity["instance_type"]) == ("i-0fff", "c7g.large")
    assert [path for _, path, _ in fake.requests] == [
        "/i-0fff/latest/api/token",
        "/i-0fff/latest/dynamic/instance-identity/document",
    ]


def test_endpoint_from_env_and_argument_precedence(
    fake: FakeImds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(imds.ENV_ENDPOINT, fake.url + "i-0abc/")
    env_identity = imds.fetch_identity(timeout=2.0)
    assert env_identity is not None and env_identity["instance_id"] == "i-0abc1234def567890"
    arg_identity = imds.fetch_identity(fake.url + "i-0fff/", timeout=2.0)
    assert arg_identity is not None and arg_identity["instance_id"] == "i-0fff"


def test_proxy_environment_is_ignored(fake: FakeImds, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(var, "http://127.0.0.1:9/")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert imds.fetch_identity(fake.url, timeout=2.0) is not None


def test_token_rejected_401(fake: FakeImds) -> None:
    fake.reject_tokens = True
    lines, log = _logger()
    assert imds.fetch_identity(fake.url, timeout=2.0, log=log) is None
    assert "HTTP 401" in lines[-1] and "identity document request" in lines[-1]


def test_imdsv1_only_server_is_not_used(fake: FakeImds) -> None:
    """No fallback to a token-less GET: without a token there is no identity."""
    lines, log = _logger()
    assert imds.fetch_identity(fake.url + "no-such-instance/", timeout=2.0, log=log) is None
    assert "HTTP 404" in lines[-1] and "token request" in lines[-1]
    assert [method for method, _, _ in fake.requests] == ["PUT"]


def test_busy_imds_is_asked_again(fake: FakeImds, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 is transient: the agent tries again and still records where it ran."""
    monkeypatch.setattr(imds, "RETRY_PAUSE_S", 0.01)
    fake.busy_puts = imds.ATTEMPTS - 1
    lines, log = _logger()
    identity = imds.fetch_identity(fake.url, timeout=2.0, log=log)
    assert identity is not None and identity["availability_zone"] == "us-east-1b"
    assert [m for m, _, _ in fake.requests] == ["PUT"] * imds.ATTEMPTS + ["GET"]
    assert sum("HTTP 503" in line for line in lines) == imds.ATTEMPTS - 1


def test_busy_imds_gives_up_after_the_last_try(
    fake: FakeImds, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(imds, "RETRY_PAUSE_S", 0.01)
    fake.busy_puts = imds.ATTEMPTS
    lines, log = _logger()
    assert imds.fetch_identity(fake.url, timeout=2.0, log=log) is None
    assert [m for m, _, _ in fake.requests] == ["PUT"] * imds.ATTEMPTS
    assert "unavailable" in lines[-1] and "HTTP 503" in lines[-1]


def test_slow_imds_gets_a_longer_timeout(fake: FakeImds, monkeypatch: pytest.MonkeyPatch) -> None:
    """An answer later than the first timeout (the sandbox's IMDS on a loaded machine) is
    waited for on the next try, whose timeout is twice as long."""
    monkeypatch.setattr(imds, "RETRY_PAUSE_S", 0.01)
    fake.slow_puts = [0.6, 0.6]
    lines, log = _logger()
    identity = imds.fetch_identity(fake.url, timeout=0.4, log=log)
    assert identity is not None
    assert any("timed out" in line for line in lines[:-1])
    assert "EC2 identity from" in lines[-1]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"<html>captive portal</html>", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"instanceId": "i-1", "region": "us-east-1"}', "lacks"),
    ],
)
def test_bad_document(fake: FakeImds, body: bytes, reason: str) -> None:
    fake.body_override = body
    lines, log = _logger()
    assert imds.fetch_identity(fake.url, timeout=2.0, log=log) is None
    assert reason in lines[-1]


def test_region_derived_from_az_when_absent() -> None:
    doc = {k: v for k, v in DOC.items() if k not in ("region", "accountId")}
    identity = imds.parse_identity_document(json.dumps(doc).encode())
    assert identity["region"] == "us-east-1" and identity["account_id"] is None


def test_server_that_never_answers_times_out() -> None:
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # the kernel completes the handshake; nobody ever reads or answers
    try:
        lines, log = _logger()
        start = time.monotonic()
        result = imds.fetch_identity(
            f"http://127.0.0.1:{silent.getsockname()[1]}/", timeout=0.3, log=log
        )
        elapsed = time.monotonic() - start
    finally:
        silent.close()
    assert result is None and "token request" in lines[-1]
    assert elapsed < 5  # bounded by the timeout, not hung


def test_connection_refused() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    lines, log = _logger()
    assert imds.fetch_identity(f"http://127.0.0.1:{port}/", timeout=1.0, log=log) is None
    assert "failed" in lines[-1]


def test_disabled_env_makes_no_request(
    fake: FakeImds, monkeypatch: pytest.MonkeyPatch, connects: list[Any]
) -> None:
    monkeypatch.setenv(imds.ENV_DISABLED, "true")
    monkeypatch.setenv(imds.ENV_ENDPOINT, fake.url)
    lines, log = _logger()
    assert imds.fetch_identity(fake.url, timeout=2.0, log=log) is None
    assert connects == [] and fake.requests == []
    assert imds.ENV_DISABLED in lines[-1]


def test_not_ec2_no_connection_attempted(connects: list[Any]) -> None:
    """On this (non-EC2) machine, no endpoint configured: None and not a single connect."""
    if imds.looks_like_ec2("/"):
        pytest.skip("this machine is an EC2 instance")
    lines, log = _logger()
    assert imds.fetch_identity(timeout=5.0, log=log) is None
    assert connects == []
    assert "not an EC2 instance" in lines[-1]


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("sys/devices/virtual/dmi/id/sys_vendor", "Amazon EC2\n"),
        ("sys/devices/virtual/dmi/id/board_vendor", "Amazon EC2\n"),
        ("sys/hypervisor/uuid", "ec2a1b2c-0000-1111-2222-333344445555\n"),
    ],
)
def test_ec2_looking_machine_uses_default_address(
    tmp_path: Path, rel: str, text: str, connects: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default 169.254.169.254 is chosen only on EC2; the audit hook blocks the connect."""
    path = tmp_path / rel
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert imds.looks_like_ec2(str(tmp_path))
    _Audit.block = True
    monkeypatch.setattr(imds, "RETRY_PAUSE_S", 0.01)
    assert imds.fetch_identity(timeout=1.0, root=str(tmp_path)) is None
    # A refused connection is asked again (an overloaded endpoint refuses too), never elsewhere.
    assert connects == [("169.254.169.254", 80)] * imds.ATTEMPTS

    connects.clear()
    monkeypatch.setenv(imds.ENV_ENDPOINT_MODE, "IPv6")
    assert imds.resolve_endpoint(root=str(tmp_path))[0] == imds.DEFAULT_ENDPOINT_IPV6


def test_other_vendors_are_not_ec2(tmp_path: Path) -> None:
    (tmp_path / "sys/devices/virtual/dmi/id").mkdir(parents=True)
    (tmp_path / "sys/devices/virtual/dmi/id/sys_vendor").write_text("QEMU\n")
    assert not imds.looks_like_ec2(str(tmp_path))
    assert imds.resolve_endpoint(root=str(tmp_path))[0] is None


def test_non_http_endpoint_rejected(connects: list[Any]) -> None:
    lines, log = _logger()
    assert imds.fetch_identity("file:///etc/passwd", log=log) is None
    assert connects == [] and "not an http(s) URL" in lines[-1]


def test_join_url() -> None:
    assert imds.join_url("http://h/", "latest/x") == "http://h/latest/x"
    assert imds.join_url("http://h/i-1", "latest/x") == "http://h/i-1/latest/x"
    assert imds.join_url("http://h/i-1/", "/latest/x") == "http://h/i-1/latest/x"
