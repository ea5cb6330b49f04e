"""The sandbox as one object: moto (AWS), the results bucket, IMDS and the cloud-init.

``instbench run --sandbox`` and ``instbench sandbox serve`` both use `Sandbox`, so the
offline flow is the same code whether it lives inside the controller or in its own
process (which is what fault tests need: kill the controller, keep the cloud).

The sandbox simulates one region: us-east-1 unless asked for another (`--region`; moto
serves every region). What the fleet code needs from AWS is already in moto for every
region (moto 5.x), checked by tests/integration/test_sandbox_cloudinit.py (us-east-1) and
tests/e2e/test_sandbox_region.py (eu-west-1) so that a moto upgrade that drops any of it
fails loudly, and therefore not seeded here:

- the public SSM parameters
  ``/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-{x86_64,arm64}``, and
  the images they name in ``DescribeImages`` (so ``MOTO_ENABLE_AMI_VALIDATION=true``
  accepts them) with the right architectures;
- ``DescribeInstanceTypes`` / ``DescribeInstanceTypeOfferings`` for m7i.large (Intel),
  m7a.large (AMD) and c7g.large (Graviton) in every zone;
- a default VPC with one default subnet per zone.

Only the results bucket is created (idempotently).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import tempfile
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from instbench.aws.session import AwsSession, AwsSettings
from instbench.errors import UserError
from instbench.sandbox.cloudinit import DEFAULT_BOOT_SPACING, CloudInit
from instbench.sandbox.imds import ImdsServer
from instbench.sandbox.motoserver import SANDBOX_CREDENTIALS, SANDBOX_REGION, MotoServer
from instbench.sandbox.service import Service

DEFAULT_BUCKET = "instbench-sandbox-results"

_LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})
_PROFILE_ENV = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")

Log = Callable[[str], None]


@dataclass(frozen=True)
class _CloudOptions:
    max_parallel: int
    poll_interval: float
    boot_delay: float
    boot_spacing: float
    minute_seconds: float | None
    term_grace: float
    halt_on_exit: bool
    extra_env: dict[str, str]


class Sandbox(Service):
    """A running sandbox for the duration of a ``with`` block.

    ``endpoint``: use this (loopback) moto server instead of starting one, e.g. the test
    suite's. ``port``: where to start moto (0: a free port). ``workdir``: where instance
    directories go (default: a temporary directory, removed at exit unless
    ``keep_workdir``). The other options go to `CloudInit` (``max_parallel``,
    ``poll_interval``, ``boot_delay``, ``boot_spacing``, ``minute_seconds``, ``term_grace``,
    ``halt_on_exit``, ``extra_env``) and `ImdsServer` (``identity_overrides``; default:
    the ``INSTBENCH_SANDBOX_*`` environment variables).
    """

    def __init__(
        self,
        *,
        endpoint: str | None = None,
        port: int = 0,
        bucket: str = DEFAULT_BUCKET,
        region: str = SANDBOX_REGION,
        workdir: Path | None = None,
        keep_workdir: bool = False,
        max_parallel: int = 1,
        poll_interval: float = 0.5,
        boot_delay: float = 0.0,
        boot_spacing: float = DEFAULT_BOOT_SPACING,
        minute_seconds: float | None = None,
        term_grace: float = 3.0,
        halt_on_exit: bool = True,
        identity_overrides: Mapping[str, str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        log: Log | None = None,
        quiet_moto: bool = True,
    ) -> None:
        if endpoint is not None:
            host = urllib.parse.urlsplit(endpoint).hostname or ""
            if host not in _LOOPBACK:
                raise UserError(f"the sandbox runs against a loopback endpoint, not {endpoint}")
        self._given_endpoint = endpoint.rstrip("/") if endpoint else None
        self._port = port
        self.bucket = bucket
        self.region = region
        self._workdir_arg = workdir
        self._keep_workdir = keep_workdir or workdir is not None
        self._cloud_options = _CloudOptions(
            max_parallel,
            poll_interval,
            boot_delay,
            boot_spacing,
            minute_seconds,
            term_grace,
            halt_on_exit,
            dict(extra_env or {}),
        )
        self._overrides = identity_overrides
        self._log = log
        self._quiet_moto = quiet_moto
        self._moto: MotoServer | None = None
        self._imds: ImdsServer | None = None
        self._cloud: CloudInit | None = None
        self._session: AwsSession | None = None
        self.endpoint = ""
        self.workdir = Path()

    # -- what callers use -----------------------------------------------------------------

    def aws_settings(self) -> AwsSettings:
        """Settings for an `AwsSession` that talks to this sandbox (static credentials)."""
        if not self.endpoint:
            raise RuntimeError("sandbox not started")
        return AwsSettings(
            region=self.region,
            endpoint_url=self.endpoint,
            access_key_id=SANDBOX_CREDENTIALS["aws_access_key_id"],
            secret_access_key=SANDBOX_CREDENTIALS["aws_secret_access_key"],
            isolated=True,
        )

    def environ(self) -> dict[str, str]:
        """Environment variables that point boto3 (and instbench) at this sandbox."""
        if not self.endpoint:
            raise RuntimeError("sandbox not started")
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": SANDBOX_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": SANDBOX_CREDENTIALS["aws_secret_access_key"],
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }

    @property
    def session(self) -> AwsSession:
        """The sandbox's own session (the cloud-init and IMDS use it)."""
        if self._session is None:
            raise RuntimeError("sandbox not started")
        return self._session

    @property
    def cloudinit(self) -> CloudInit:
        if self._cloud is None:
            raise RuntimeError("sandbox not started")
        return self._cloud

    @property
    def imds(self) -> ImdsServer:
        if self._imds is None:
            raise RuntimeError("sandbox not started")
        return self._imds

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> Sandbox:
        if self._quiet_moto:
            # moto's werkzeug server logs every request; that would drown the run's output.
            logging.getLogger("werkzeug").setLevel(logging.WARNING)
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        # moto builds boto3 sessions of its own from the environment (at import, in this
        # process): a profile named by AWS_PROFILE that exists only on the user's real
        # machine would fail them. The sandbox has its own credentials and reads no profile.
        for key in _PROFILE_ENV:
            os.environ.pop(key, None)
        if self._given_endpoint is not None:
            self.endpoint = self._given_endpoint
        else:
            if self._port:
                _check_port_free(self._port)
            self._moto = MotoServer(port=self._port).start()
            self.endpoint = self._moto.endpoint
        self._session = AwsSession(self.aws_settings())
        self._create_bucket()
        if self._workdir_arg is not None:
            self.workdir = Path(self._workdir_arg)
            self.workdir.mkdir(parents=True, exist_ok=True)
        else:
            self.workdir = Path(tempfile.mkdtemp(prefix="instbench-sandbox-"))
        self._imds = ImdsServer(self._session, overrides=self._overrides).start()
        opts = self._cloud_options
        self._cloud = CloudInit(
            self._session,
            self.workdir,
            max_parallel=opts.max_parallel,
            poll_interval=opts.poll_interval,
            boot_delay=opts.boot_delay,
            boot_spacing=opts.boot_spacing,
            minute_seconds=opts.minute_seconds,
            term_grace=opts.term_grace,
            halt_on_exit=opts.halt_on_exit,
            extra_env=opts.extra_env,
            imds_endpoint=self._imds.endpoint,
            log=self._log,
        ).start()

    def stop(self) -> None:
        """Kill running scripts, stop IMDS and (if it was started here) moto."""
        if self._cloud is not None:
            self._cloud.stop()
            self._cloud = None
        if self._imds is not None:
            self._imds.stop()
            self._imds = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
        if self.workdir != Path() and not self._keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def _create_bucket(self) -> None:
        s3 = self.session.s3()
        kwargs: dict[str, object] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            s3.create_bucket(**kwargs)  # type: ignore[arg-type]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise UserError(f"sandbox bucket {self.bucket!r}: {exc}") from exc


def _check_port_free(port: int) -> None:
    """A clear error for a taken --port (moto's server thread would hang instead)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError as exc:
            raise UserError(
                f"cannot serve the sandbox on 127.0.0.1:{port}: {exc.strerror}"
            ) from exc
