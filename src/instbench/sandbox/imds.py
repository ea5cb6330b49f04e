"""IMDSv2 for simulated instances: one loopback HTTP server, one path prefix per instance.

On EC2 the agent learns who it runs on (instance id, type, zone, image) from the instance
metadata service. In the sandbox every instance runs on this machine, so the cloud-init
gives each script ``AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:PORT/{instance-id}/``
and this server answers for that instance with what the EC2 API (the moto server) says
about it: ``DescribeInstances`` is the single source of truth, as on AWS.

The protocol is tiny (a token PUT and a handful of GETs), so it is served with the standard
library's ``http.server`` rather than another dependency. It behaves like IMDS where a
client could notice:

- ``PUT {iid}/latest/api/token`` needs ``X-aws-ec2-metadata-token-ttl-seconds`` in
  1..21600 (400 otherwise) and is refused with 403 when ``X-Forwarded-For`` is present
  (IMDS does that so a token cannot be fetched through a proxy); the token is bound to the
  instance and expires after its TTL;
- a GET with a missing, expired or foreign token gets 401 when the instance was launched
  with ``HttpTokens=required`` (instbench always launches so); with ``optional`` a GET
  without a token is answered (IMDSv1);
- ``latest/dynamic/instance-identity/document`` is the identity document JSON
  (instanceId, instanceType, availabilityZone, region, imageId, accountId, architecture,
  privateIp, pendingTime, version...); ``latest/meta-data/`` has ``instance-id``,
  ``instance-type``, ``ami-id``, ``local-ipv4``, ``placement/availability-zone``,
  ``placement/region``; ``latest/user-data`` the user data; an unknown instance or path
  is 404.

Identity overrides (read from the environment when the server is built, or passed
explicitly), each replacing one field of the document for every instance, e.g. to make the
sandbox claim a type or zone it was not launched as (a fault test of the controller's
identity checks):

=====================================  ====================
``INSTBENCH_SANDBOX_INSTANCE_ID``      ``instanceId``
``INSTBENCH_SANDBOX_INSTANCE_TYPE``    ``instanceType``
``INSTBENCH_SANDBOX_AVAILABILITY_ZONE`` ``availabilityZone``
``INSTBENCH_SANDBOX_REGION``           ``region``
``INSTBENCH_SANDBOX_IMAGE_ID``         ``imageId``
``INSTBENCH_SANDBOX_ACCOUNT_ID``       ``accountId``
``INSTBENCH_SANDBOX_ARCHITECTURE``     ``architecture``
``INSTBENCH_SANDBOX_PRIVATE_IP``       ``privateIp``
=====================================  ====================

The ``meta-data`` paths are derived from the (overridden) document, so both views agree.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from instbench.aws.session import AwsSession
from instbench.sandbox.service import Service

IDENTITY_ENV: dict[str, str] = {
    "instanceId": "INSTBENCH_SANDBOX_INSTANCE_ID",
    "instanceType": "INSTBENCH_SANDBOX_INSTANCE_TYPE",
    "availabilityZone": "INSTBENCH_SANDBOX_AVAILABILITY_ZONE",
    "region": "INSTBENCH_SANDBOX_REGION",
    "imageId": "INSTBENCH_SANDBOX_IMAGE_ID",
    "accountId": "INSTBENCH_SANDBOX_ACCOUNT_ID",
    "architecture": "INSTBENCH_SANDBOX_ARCHITECTURE",
    "privateIp": "INSTBENCH_SANDBOX_PRIVATE_IP",
}
"""Identity document field -> environment variable that overrides it."""

TOKEN_PATH = "latest/api/token"
DOCUMENT_PATH = "latest/dynamic/instance-identity/document"
TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
MAX_TTL_SECONDS = 21600

_INSTANCE_ID = re.compile(r"^i-[0-9a-f]{8,17}$")
_LIVE_STATES = frozenset({"pending", "running"})

_META_DATA: dict[str, str] = {
    "ami-id": "imageId",
    "instance-id": "instanceId",
    "instance-type": "instanceType",
    "local-ipv4": "privateIp",
    "placement/availability-zone": "availabilityZone",
    "placement/region": "region",
}
"""meta-data path -> identity document field."""

_LISTINGS: dict[str, str] = {
    "latest": "api/\ndynamic/\nmeta-data/\nuser-data",
    "latest/dynamic": "instance-identity/",
    "latest/dynamic/instance-identity": "document",
    "latest/meta-data": "ami-id\ninstance-id\ninstance-type\nlocal-ipv4\nplacement/",
    "latest/meta-data/placement": "availability-zone\nregion",
}


def overrides_from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Identity overrides set in ``environ`` (default: this process's environment)."""
    env = os.environ if environ is None else environ
    return {field: env[var] for field, var in IDENTITY_ENV.items() if env.get(var, "").strip()}


class _Instance:
    """What IMDS needs of one instance: its identity document and token policy."""

    def __init__(self, document: dict[str, Any], tokens_required: bool) -> None:
        self.document = document
        self.tokens_required = tokens_required


class ImdsServer(Service):
    """A started IMDSv2 server on loopback; ``instance_endpoint(iid)`` is what a script gets.

    Use as a context manager or call ``start()``/``stop()``. Thread-safe: the HTTP server
    answers each request in its own thread.
    """

    def __init__(
        self,
        session: AwsSession,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        overrides: Mapping[str, str] | None = None,
        account_id: str | None = None,
    ) -> None:
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError("the sandbox IMDS listens on loopback only")
        unknown = set(overrides or {}) - set(IDENTITY_ENV)
        if unknown:
            raise ValueError(f"unknown identity fields: {', '.join(sorted(unknown))}")
        self.session = session
        self.overrides = dict(overrides_from_env() if overrides is None else overrides)
        self._account_id = account_id
        self._host, self._port = host, port
        self._instances: dict[str, _Instance] = {}
        self._tokens: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.endpoint = ""

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> ImdsServer:
        server = ThreadingHTTPServer((self._host, self._port), _Handler)
        server.daemon_threads = True
        server.imds = self  # type: ignore[attr-defined]
        self._server = server
        host, port = server.server_address[:2]
        self.endpoint = f"http://{host!s}:{port}"
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.2},
            daemon=True,
            name="instbench-sandbox-imds",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def instance_endpoint(self, instance_id: str) -> str:
        """The IMDS base URL for one instance (``AWS_EC2_METADATA_SERVICE_ENDPOINT``)."""
        if not self.endpoint:
            raise RuntimeError("IMDS server not started")
        return f"{self.endpoint}/{instance_id}/"

    # -- identity -----------------------------------------------------------------------

    def account_id(self) -> str | None:
        """The account the instances belong to (STS, asked once; None if it cannot say)."""
        if self._account_id is None:
            try:
                self._account_id = self.session.sts().get_caller_identity()["Account"]
            except (ClientError, BotoCoreError, KeyError):
                return None
        return self._account_id

    def identity(self, instance_id: str) -> dict[str, Any] | None:
        """The identity document of a pending/running instance (overrides applied)."""
        found = self._instance(instance_id)
        return None if found is None else dict(found.document)

    def _instance(self, instance_id: str) -> _Instance | None:
        if not _INSTANCE_ID.match(instance_id):
            return None
        with self._lock:
            cached = self._instances.get(instance_id)
        if cached is not None:
            return cached
        try:
            reservations = self.session.ec2().describe_instances(InstanceIds=[instance_id])[
                "Reservations"
            ]
        except ClientError:
            return None
        found = [i for r in reservations for i in r.get("Instances", [])]
        if not found or found[0].get("State", {}).get("Name") not in _LIVE_STATES:
            return None
        inst: Any = found[0]
        launched = inst.get("LaunchTime")
        document: dict[str, Any] = {
            "accountId": self.account_id(),
            "architecture": inst.get("Architecture"),
            "availabilityZone": inst.get("Placement", {}).get("AvailabilityZone"),
            "billingProducts": None,
            "devpayProductCodes": None,
            "marketplaceProductCodes": None,
            "imageId": inst.get("ImageId"),
            "instanceId": instance_id,
            "instanceType": inst.get("InstanceType"),
            "kernelId": None,
            "pendingTime": (
                launched.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                if isinstance(launched, datetime)
                else None
            ),
            "privateIp": inst.get("PrivateIpAddress"),
            "ramdiskId": None,
            "region": self.session.region,
            "version": "2017-09-30",
        }
        document.update(self.overrides)
        tokens = inst.get("MetadataOptions", {}).get("HttpTokens", "optional")
        result = _Instance(document, tokens_required=tokens == "required")
        with self._lock:
            self._instances[instance_id] = result
        return result

    def user_data(self, instance_id: str) -> bytes | None:
        """The instance's user data as launched (None when it has none)."""
        try:
            attr = self.session.ec2().describe_instance_attribute(
                InstanceId=instance_id, Attribute="userData"
            )
        except ClientError:
            return None
        value = attr.get("UserData", {}).get("Value")
        return base64.b64decode(value) if value else None

    # -- tokens -------------------------------------------------------------------------

    def new_token(self, instance_id: str, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            for old in [t for t, (_, exp) in self._tokens.items() if exp <= now]:
                del self._tokens[old]
            self._tokens[token] = (instance_id, now + ttl)
        return token

    def token_valid(self, token: str, instance_id: str) -> bool:
        with self._lock:
            entry = self._tokens.get(token)
        return entry is not None and entry[0] == instance_id and entry[1] > time.monotonic()


class _Handler(BaseHTTPRequestHandler):
    """Routes ``/{instance-id}/latest/...`` to the owning `ImdsServer`."""

    server_version = "EC2ws"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    @property
    def imds(self) -> ImdsServer:
        return self.server.imds  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines would interleave with the controller's output."""

    def _send(self, code: int, body: str | bytes, headers: Mapping[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _route(self) -> tuple[str, str]:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        parts = [p for p in path.split("/") if p]
        if not parts:
            return "", ""
        return parts[0], "/".join(parts[1:])

    def _drain(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if 0 < length <= 65536:
            self.rfile.read(length)

    def do_PUT(self) -> None:
        self._drain()
        instance_id, rest = self._route()
        if rest != TOKEN_PATH:
            self._send(404, "Not Found")
            return
        if self.headers.get("X-Forwarded-For"):
            self._send(403, "Forbidden")
            return
        raw_ttl = (self.headers.get(TTL_HEADER) or "").strip()
        if not raw_ttl.isdigit() or not 1 <= int(raw_ttl) <= MAX_TTL_SECONDS:
            self._send(400, "Bad Request")
            return
        if self.imds._instance(instance_id) is None:
            self._send(404, "Not Found")
            return
        token = self.imds.new_token(instance_id, int(raw_ttl))
        self._send(200, token, {TTL_HEADER: raw_ttl})

    def do_GET(self) -> None:
        instance_id, rest = self._route()
        found = self.imds._instance(instance_id)
        if found is None:
            self._send(404, "Not Found")
            return
        token = self.headers.get(TOKEN_HEADER)
        if (token is not None or found.tokens_required) and (
            token is None or not self.imds.token_valid(token.strip(), instance_id)
        ):
            self._send(401, "Unauthorized")
            return
        doc = found.document
        meta = rest.removeprefix("latest/meta-data/")
        if rest == DOCUMENT_PATH:
            self._send(200, json.dumps(doc, indent=2))
        elif meta != rest and meta in _META_DATA:
            value = doc.get(_META_DATA[meta])
            if value is None:
                self._send(404, "Not Found")
            else:
                self._send(200, str(value))
        elif rest in _LISTINGS:
            self._send(200, _LISTINGS[rest])
        elif rest == "latest/user-data":
            data = self.imds.user_data(instance_id)
            if data:
                self._send(200, data)
            else:
                self._send(404, "Not Found")
        else:
            self._send(404, "Not Found")

    do_HEAD = do_GET

    def _not_allowed(self) -> None:
        self._drain()
        self._send(405, "Method Not Allowed")

    do_POST = _not_allowed
    do_DELETE = _not_allowed
    do_PATCH = _not_allowed
