"""The one place boto3 clients are built.

Every AWS call instbench makes goes through an `AwsSession`, so retries (botocore's
adaptive mode: throttling is handled there, never by hand-written sleep loops), timeouts,
the endpoint (`AWS_ENDPOINT_URL` as boto3 defines it, or an explicit one for the sandbox)
and event hooks (used by tests to inject faults and to record every operation called) are
configured once.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import botocore.config
import botocore.exceptions
import botocore.loaders
import botocore.session

from instbench.errors import AwsConfigError

if TYPE_CHECKING:
    from mypy_boto3_ec2 import EC2Client
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_ssm import SSMClient
    from mypy_boto3_sts import STSClient


_LOADER = botocore.loaders.create_loader()
"""One model loader per process: parsing the EC2 service model costs ~0.5 s per session."""
_LOADER_LOCK = threading.Lock()


_ISOLATED_VARS = {
    "profile": (None, None, None, None),
    "config_file": (None, None, os.devnull, None),
    "credentials_file": (None, None, os.devnull, None),
}
"""botocore session variables that make a session read no profile (not even AWS_PROFILE)
and no shared config or credentials file: see `AwsSettings.isolated`."""


def _botocore_session(isolated: bool = False) -> botocore.session.Session:
    core = botocore.session.Session(session_vars=_ISOLATED_VARS if isolated else None)
    core.register_component("data_loader", _LOADER)
    return core


_PROCESS_HOOKS: list[tuple[str, Callable[..., Any]]] = []
_PROCESS_HOOKS_LOCK = threading.Lock()


def register_process_hook(event_name: str, handler: Callable[..., Any]) -> None:
    """Register a botocore event handler on every `AwsSession` created from now on.

    For observers that must see every AWS call of the process, including those made
    through sessions the code builds itself (the fleet, the sandbox): the test suite's
    audit of the operations the IAM policy must allow. Use `AwsSession.register_hook`
    for one session.
    """
    with _PROCESS_HOOKS_LOCK:
        _PROCESS_HOOKS.append((event_name, handler))


def unregister_process_hook(event_name: str, handler: Callable[..., Any]) -> None:
    """Stop adding `handler` to new sessions (sessions already built keep it)."""
    with _PROCESS_HOOKS_LOCK:
        if (event_name, handler) in _PROCESS_HOOKS:
            _PROCESS_HOOKS.remove((event_name, handler))


@dataclass(frozen=True)
class AwsSettings:
    """Where and as whom to call AWS. None means: let the boto3 chain decide."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    max_attempts: int = 10
    access_key_id: str | None = None
    secret_access_key: str | None = None
    """Static credentials (the sandbox's); None means the boto3 credential chain."""
    isolated: bool = False
    """Read no profile (neither `profile` nor AWS_PROFILE) and no ~/.aws file: the
    sandbox's sessions, so that a command with `--profile P` (or a shell with AWS_PROFILE)
    runs in the sandbox although P exists only on the user's real machine, and nothing
    from the user's AWS configuration reaches the simulated cloud."""


class AwsSession:
    """A boto3 session plus cached, thread-safe clients configured the instbench way."""

    def __init__(self, settings: AwsSettings) -> None:
        self.settings = settings
        try:
            core = _botocore_session(settings.isolated)
            with _LOADER_LOCK:
                self._session = boto3.session.Session(
                    botocore_session=core,
                    profile_name=None if settings.isolated else settings.profile,
                    region_name=settings.region,
                    aws_access_key_id=settings.access_key_id,
                    aws_secret_access_key=settings.secret_access_key,
                )
                # boto3 appends its data directory to the (shared) loader every time.
                paths = _LOADER.search_paths
                paths[:] = list(dict.fromkeys(paths))
            core.get_scoped_config()  # raises ProfileNotFound now, not at the first call
        except botocore.exceptions.ProfileNotFound as exc:
            raise AwsConfigError(
                f"AWS profile {settings.profile!r} not found: check ~/.aws/config or --profile"
            ) from exc
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        with _PROCESS_HOOKS_LOCK:
            for event_name, handler in _PROCESS_HOOKS:
                self._session.events.register(event_name, handler)
        self._config = botocore.config.Config(
            retries={"mode": "adaptive", "max_attempts": settings.max_attempts},
            connect_timeout=10,
            read_timeout=60,
            max_pool_connections=64,
        )

    @property
    def region(self) -> str:
        """The region calls go to; an error that says how to set one if there is none."""
        region = self._session.region_name
        if not region:
            raise AwsConfigError("no AWS region: pass --region or set AWS_REGION")
        return region

    def register_hook(self, event_name: str, handler: Callable[..., Any]) -> None:
        """Register a botocore event handler on this session (fault injection, auditing).

        Clients copy the session's handlers when they are built, so the handler is also
        added to the clients already built.
        """
        with self._lock:
            self._session.events.register(event_name, handler)
            for client in self._clients.values():
                client.meta.events.register(event_name, handler)

    def client(self, service: str) -> Any:
        """A client for `service`, built once per session and shared across threads."""
        with self._lock:
            if service not in self._clients:
                config = self._config
                if service == "s3":
                    # SigV4 everywhere: a presigned URL is then bound to its one key (and
                    # content type), and works in every region. Some endpoints default to
                    # SigV2 query signing otherwise.
                    config = config.merge(botocore.config.Config(signature_version="s3v4"))
                kwargs: dict[str, Any] = {"region_name": self.region, "config": config}
                if self.settings.endpoint_url:
                    kwargs["endpoint_url"] = self.settings.endpoint_url
                self._clients[service] = self._session.client(service, **kwargs)  # type: ignore[call-overload]
            return self._clients[service]

    def ec2(self) -> EC2Client:
        return self.client("ec2")  # type: ignore[no-any-return]

    def s3(self) -> S3Client:
        return self.client("s3")  # type: ignore[no-any-return]

    def ssm(self) -> SSMClient:
        return self.client("ssm")  # type: ignore[no-any-return]

    def sts(self) -> STSClient:
        return self.client("sts")  # type: ignore[no-any-return]

    def has_credentials(self) -> bool:
        """True when the boto3 chain finds credentials (no network call is made)."""
        return self._session.get_credentials() is not None

    def credentials_expiry(self) -> datetime | None:
        """When the credentials expire, if they are temporary and say so (else None).

        Presigned URLs signed with temporary credentials stop working when those expire,
        whatever their own expiry: the run warns when that is sooner than its instances
        may need them. botocore keeps the time on refreshable credentials (an assumed
        role, SSO, or AWS_CREDENTIAL_EXPIRATION beside a session token).
        """
        credentials = self._session.get_credentials()
        expiry = getattr(credentials, "_expiry_time", None)
        if not isinstance(expiry, datetime):
            return None
        return expiry if expiry.tzinfo else expiry.replace(tzinfo=UTC)
