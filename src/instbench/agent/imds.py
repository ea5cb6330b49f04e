"""EC2 identity through the instance metadata service, IMDSv2 only (stdlib, Python 3.9).

Why IMDSv2 only: instances are launched with ``HttpTokens=required``, so an IMDSv1 GET would
be refused anyway, and a session token cannot be obtained through an open proxy or a
redirected request, which is the reason IMDSv2 exists.

Why so careful about *when* to ask: the default address 169.254.169.254 is link-local; off
EC2 a request to it either hangs until the timeout or, worse, reaches whatever answers on
that address in somebody's network. So without an explicitly configured endpoint we only
ask when the machine itself says it is EC2 (DMI vendor or Xen hypervisor UUID). A result
without identity is fine; a hung or misdirected agent is not.

Endpoint resolution, as the AWS SDKs do it:

1. the ``endpoint`` argument;
2. ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` (the sandbox sets it, one path prefix per
   simulated instance, e.g. ``http://127.0.0.1:PORT/i-0abc/``);
3. ``http://169.254.169.254/`` (or ``http://[fd00:ec2::254]/`` when
   ``AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE=IPv6``), only when the machine looks like EC2.

``AWS_EC2_METADATA_DISABLED=true`` wins over all of them (as in botocore): no request at all.

Failures never raise: identity is optional provenance, and losing a benchmark run because
IMDS was slow would be the wrong trade. The reason goes to the optional ``log`` callable.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from typing import Any, Callable, Dict, Optional, Tuple

DEFAULT_ENDPOINT = "http://169.254.169.254/"
"""IMDS over IPv4 (link-local)."""

DEFAULT_ENDPOINT_IPV6 = "http://[fd00:ec2::254]/"
"""IMDS over IPv6 (Nitro instances with the IPv6 endpoint enabled)."""

TOKEN_PATH = "latest/api/token"
DOCUMENT_PATH = "latest/dynamic/instance-identity/document"
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
TOKEN_TTL_SECONDS = 21600
"""The maximum TTL IMDS accepts (6 h); the token is used once, but a long TTL costs nothing."""

ENV_ENDPOINT = "AWS_EC2_METADATA_SERVICE_ENDPOINT"
ENV_ENDPOINT_MODE = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"
ENV_DISABLED = "AWS_EC2_METADATA_DISABLED"

EC2_VENDOR_FILES = (
    "sys/devices/virtual/dmi/id/sys_vendor",
    "sys/devices/virtual/dmi/id/board_vendor",
)
"""DMI vendor files that read "Amazon EC2" on Nitro instances (world-readable)."""

HYPERVISOR_UUID_FILE = "sys/hypervisor/uuid"
"""On Xen-based instances the hypervisor UUID starts with "ec2"."""

_MAX_RESPONSE_BYTES = 64 * 1024
"""The identity document is < 1 KiB; never buffer more than this from an endpoint."""

Log = Callable[[str], None]


def _read_text(root: str, rel: str) -> Optional[str]:
    try:
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as fh:
            return fh.read(4096)
    except OSError:
        return None


def ec2_markers(read: Callable[[str], Optional[str]]) -> bool:
    """True when the files the kernel exposes say this machine is an EC2 instance.

    ``read`` maps a path relative to the filesystem root to its text (None if missing), so
    sysinfo can apply the same test to a recorded tree.
    """
    for rel in EC2_VENDOR_FILES:
        text = read(rel)
        if text is not None and text.strip() == "Amazon EC2":
            return True
    uuid = read(HYPERVISOR_UUID_FILE)
    return uuid is not None and uuid.strip().lower().startswith("ec2")


def looks_like_ec2(root: str = "/") -> bool:
    """True when files under ``root`` identify the machine as EC2 (no network involved)."""
    return ec2_markers(lambda rel: _read_text(root, rel))


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() == "true"


def resolve_endpoint(endpoint: Optional[str] = None, root: str = "/") -> Tuple[Optional[str], str]:
    """The endpoint to query and why, or (None, reason) when none must be queried."""
    if _env_true(ENV_DISABLED):
        return None, f"IMDS disabled by {ENV_DISABLED}=true"
    if endpoint:
        chosen, source = endpoint, "argument"
    elif os.environ.get(ENV_ENDPOINT, "").strip():
        chosen, source = os.environ[ENV_ENDPOINT].strip(), ENV_ENDPOINT
    else:
        if not looks_like_ec2(root):
            return None, "not an EC2 instance (no Amazon EC2 DMI vendor or ec2 hypervisor UUID)"
        ipv6 = os.environ.get(ENV_ENDPOINT_MODE, "").strip().lower() == "ipv6"
        chosen = DEFAULT_ENDPOINT_IPV6 if ipv6 else DEFAULT_ENDPOINT
        source = "default (machine looks like EC2)"
    if not chosen.lower().startswith(("http://", "https://")):
        return None, f"IMDS endpoint {chosen!r} from {source} is not an http(s) URL"
    return chosen, source


def join_url(endpoint: str, path: str) -> str:
    """Append ``path`` to ``endpoint`` keeping any path prefix the endpoint carries."""
    return endpoint.rstrip("/") + "/" + path.lstrip("/")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """IMDS never redirects; following one would hand the session token to another host."""

    def redirect_request(
        self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> None:
        return None


def _opener() -> urllib.request.OpenerDirector:
    # No proxies: IMDS is on-link, and an HTTP(S)_PROXY from the environment must not see
    # the request (nor could it reach 169.254.169.254 of *this* instance).
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect())


def parse_identity_document(raw: bytes) -> Dict[str, Any]:
    """Map the IMDS identity document to the schema's Ec2Identity fields.

    Raises ValueError when the document is not JSON or lacks a required field. ``region`` is
    taken from the document; only if absent is it derived from the availability zone.
    """
    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"identity document is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ValueError("identity document is not a JSON object")

    def text(key: str) -> Optional[str]:
        value = doc.get(key)
        return value.strip() if isinstance(value, str) and value.strip() else None

    fields = {
        "instance_id": text("instanceId"),
        "instance_type": text("instanceType"),
        "availability_zone": text("availabilityZone"),
        "ami_id": text("imageId"),
    }
    missing = sorted(k for k, v in fields.items() if v is None)
    if missing:
        raise ValueError(f"identity document lacks {', '.join(missing)}")
    az = str(fields["availability_zone"])
    region = text("region") or az.rstrip("abcdefghijklmnopqrstuvwxyz")
    identity: Dict[str, Any] = dict(fields)
    identity["region"] = region
    identity["account_id"] = text("accountId")
    return identity


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code}"
    if isinstance(exc, urllib.error.URLError):
        return f"{exc.reason}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


ATTEMPTS = 3
"""Tries per identity fetch. IMDS answers in milliseconds on EC2, but a throttled IMDS (or
the sandbox's, on a loaded machine) can miss a one-second timeout; losing the result's
provenance, and so the result, to one slow answer is the wrong trade."""

RETRY_PAUSE_S = 0.5
"""Pause before the second try; doubled before each later one."""


class _Transient(Exception):
    """A failure another try may not repeat: a timeout, a refused connection, HTTP 429/5xx."""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code == 429 or exc.code >= 500
    return isinstance(exc, (urllib.error.URLError, OSError))


def _fetch_once(opener: urllib.request.OpenerDirector, endpoint: str, timeout: float) -> bytes:
    """One token PUT and one document GET; raises with the step that failed in ``args[0]``."""
    step = "token request"
    try:
        token_req = urllib.request.Request(
            join_url(endpoint, TOKEN_PATH),
            data=b"",
            method="PUT",
            headers={TOKEN_TTL_HEADER: str(TOKEN_TTL_SECONDS)},
        )
        with opener.open(token_req, timeout=timeout) as resp:
            token = resp.read(_MAX_RESPONSE_BYTES).decode("ascii", errors="replace").strip()
        if not token:
            raise ValueError("empty session token")
        step = "identity document request"
        doc_req = urllib.request.Request(
            join_url(endpoint, DOCUMENT_PATH), method="GET", headers={TOKEN_HEADER: token}
        )
        with opener.open(doc_req, timeout=timeout) as resp:
            return bytes(resp.read(_MAX_RESPONSE_BYTES))
    except Exception as exc:
        wrapped = _Transient if _is_transient(exc) else ValueError
        raise wrapped(step, _describe(exc)) from exc


def fetch_identity(
    endpoint: Optional[str] = None,
    timeout: float = 1.0,
    root: str = "/",
    log: Optional[Log] = None,
    attempts: int = ATTEMPTS,
) -> Optional[Dict[str, Any]]:
    """EC2 identity (Ec2Identity fields) via IMDSv2, or None with the reason sent to ``log``.

    ``timeout`` bounds each of the two requests (token PUT, document GET) of the first try;
    each later try (up to ``attempts``, only after a timeout, a refused connection or HTTP
    429/5xx) doubles it. A refusal (401, 404) or a malformed document is final at once.
    ``root`` is where /sys is looked for when deciding whether the default endpoint may be
    queried.
    """
    say = log or (lambda _message: None)
    chosen, source = resolve_endpoint(endpoint, root)
    if chosen is None:
        say(f"EC2 identity skipped: {source}")
        return None
    opener = _opener()
    pause = RETRY_PAUSE_S
    for attempt in range(1, max(1, attempts) + 1):
        try:
            raw = _fetch_once(opener, chosen, timeout * 2 ** (attempt - 1))
            identity = parse_identity_document(raw)
            break
        except _Transient as exc:
            step, reason = exc.args
            if attempt < attempts:
                say(f"EC2 identity: {step} to {chosen} failed ({reason}); try {attempt + 1}")
                time.sleep(pause)
                pause *= 2
                continue
            say(f"EC2 identity unavailable: {step} to {chosen} ({source}) failed: {reason}")
            return None
        except ValueError as exc:  # identity is optional: never fail the run over it
            if len(exc.args) == 2:
                step, reason = exc.args
            else:
                step, reason = "identity document", str(exc)
            say(f"EC2 identity unavailable: {step} to {chosen} ({source}) failed: {reason}")
            return None
    say(
        f"EC2 identity from {chosen}: {identity['instance_id']} {identity['instance_type']} "
        f"{identity['availability_zone']}"
    )
    return identity
