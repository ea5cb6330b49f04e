"""`instbench sandbox serve`: the sandbox as a standalone foreground process.

`instbench run --sandbox` keeps the sandbox inside the controller, so it ends with it.
Serving it on its own lets ordinary commands (`AWS_ENDPOINT_URL=... instbench run ...`,
`instbench cleanup`, `--resume`) and fault tests (kill the controller, keep the cloud) run
against it exactly as against AWS. The first lines printed are stable and machine-readable
(``endpoint: URL``, ``region: R``, ``bucket: B``, ``workdir: DIR``, ``export ...``), so a
script or test can start it and read where it is. SIGINT or SIGTERM stops it cleanly
(scripts killed, servers closed) with exit code 0.
"""

from __future__ import annotations

import re
import shlex
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

import typer

from instbench.errors import UserError

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

sandbox_app = typer.Typer(
    help="The offline sandbox: moto plays AWS, this machine runs the instances' user data.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    """Mount the `sandbox` group on the root app."""
    app.add_typer(sandbox_app, name="sandbox")


def _err(line: str) -> None:
    stamp = time.strftime("%H:%M:%S")
    print(f"{stamp} {line}", file=sys.stderr, flush=True)


@sandbox_app.command("serve")
def serve(
    port: int = typer.Option(
        0, "--port", "-p", min=0, max=65535, help="Port on 127.0.0.1 (default: a free one)."
    ),
    bucket: str = typer.Option(
        "instbench-sandbox-results", "--bucket", help="Results bucket to create."
    ),
    region: str = typer.Option(
        "us-east-1", "--region", "-r", help="Region to simulate (moto serves every region)."
    ),
    max_parallel: int = typer.Option(
        1, "--max-parallel", min=1, help="Instances whose user data runs at once."
    ),
    workdir: Path | None = typer.Option(
        None,
        "--workdir",
        help="Keep instance directories (console, disk) here; default: a temporary "
        "directory removed at exit.",
    ),
    boot_delay: float = typer.Option(
        0.0, "--boot-delay", min=0.0, help="Seconds an instance waits before its user data runs."
    ),
    boot_spacing: float | None = typer.Option(
        None,
        "--boot-spacing",
        min=0.0,
        help="Seconds between two instances' user data starts (default 0.2): instances "
        "launched together boot one after another instead of all competing for this "
        "machine's cores at once.",
    ),
) -> None:
    """Serve the sandbox (moto + simulated cloud-init + bucket) until Ctrl-C or SIGTERM."""
    # S3's bucket naming rules, checked before anything starts (botocore would refuse the
    # name only when the sandbox creates the bucket, with a traceback).
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise UserError(
            f"invalid S3 bucket name {bucket!r}: 3-63 lowercase letters, digits, '.' or '-'"
        )
    try:
        from instbench.sandbox.cloudinit import DEFAULT_BOOT_SPACING
        from instbench.sandbox.runtime import Sandbox
    except ImportError as exc:  # moto is the optional extra instbench[sandbox]
        raise UserError(
            "the sandbox needs moto: pip install 'instbench[sandbox]' (make run does this)"
        ) from exc

    from instbench.aws.regions import check_region

    check_region(region)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Sandbox(
            port=port,
            bucket=bucket,
            region=region,
            max_parallel=max_parallel,
            workdir=workdir,
            boot_delay=boot_delay,
            boot_spacing=DEFAULT_BOOT_SPACING if boot_spacing is None else boot_spacing,
            log=_err,
        ) as sb:
            exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in sb.environ().items())
            print(f"endpoint: {sb.endpoint}")
            print(f"region: {sb.region}")
            print(f"bucket: {sb.bucket}")
            print(f"workdir: {sb.workdir}")
            print(f"export {exports}")
            print(
                "instbench sandbox serving; in another shell run the export line above, then "
                f"e.g. instbench run --instance-types m7i.large,c7g.large --bucket {sb.bucket} "
                "--quick. Ctrl-C stops it.",
                flush=True,
            )
            while not stop.wait(0.5):
                pass
            _err("sandbox: stopping")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    _err("sandbox: stopped")
