"""moto in server mode, in this process, on a free loopback port.

The sandbox and the integration tests talk to it over HTTP exactly as to AWS. Validation
of instance types and AMIs is switched on (moto's settings are read at import, so they are
set here before moto is imported) so that moto refuses what EC2 would refuse where it can.
EC2's placement-group API, which moto lacks, is added to it first (`moto_placement`).
"""

from __future__ import annotations

import os
import urllib.request
from typing import Any

from instbench.sandbox import moto_placement
from instbench.sandbox.service import Service

SANDBOX_REGION = "us-east-1"
SANDBOX_CREDENTIALS = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}
"""moto accepts any credentials; these make the sandbox independent of the user's."""

_MOTO_ENV = {
    "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION": "true",
    "MOTO_ENABLE_AMI_VALIDATION": "true",
}


class MotoServer(Service):
    """A started moto server; use as a context manager or call start()/stop()."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        if host not in {"127.0.0.1", "localhost", "::1"}:
            raise ValueError("the sandbox listens on loopback only")
        for key, value in _MOTO_ENV.items():
            os.environ.setdefault(key, value)
        from moto.server import ThreadedMotoServer

        moto_placement.install()
        self._server: Any = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self.endpoint = ""

    def start(self) -> MotoServer:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def reset(self) -> None:
        """Forget every resource (moto's reset API), between tests."""
        req = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10):
            pass

    def stop(self) -> None:
        self._server.stop()
