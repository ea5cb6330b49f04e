"""EC2 ending an instance from outside (spot reclaiming it, a host failing), played on the
in-process sandbox's moto backend: the one place tests reach into moto's EC2 models.

A watcher thread looks every 50 ms at the instances whose user data runs in the sandbox
and lets a test's `pick` choose which to end; ending sets the state reason first, then
the state, so no reader ever sees a terminated instance without its reason.
"""

from __future__ import annotations

import threading
from typing import Any

from instbench.aws.session import AwsSession
from instbench.sandbox.runtime import Sandbox

SPOT_REASON = "Server.SpotInstanceTermination"


class OutsideEnder:
    """Ends, from outside, each running instance `pick(instance)` chooses (with the state
    reason `code: message`); `ended` lists them in order. A context manager: the watcher
    runs while the block does. Subclasses define `pick`, and `done` to stop early."""

    code = SPOT_REASON
    message = "Spot instance termination"

    def __init__(self, sandbox: Sandbox) -> None:
        from moto.ec2.models import ec2_backends

        account = AwsSession(sandbox.aws_settings()).sts().get_caller_identity()["Account"]
        self.backend = ec2_backends[account][sandbox.region]
        self.cloudinit = sandbox.cloudinit
        self.ended: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> OutsideEnder:
        self.thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop.set()
        self.thread.join(timeout=30)

    def pick(self, instance: Any) -> bool:
        raise NotImplementedError

    def done(self) -> bool:
        return False

    def _watch(self) -> None:
        from moto.ec2.models.instances import StateReason

        while not self.stop.wait(0.05) and not self.done():
            for instance in list(self.backend.all_instances()):
                boot = self.cloudinit.boot(instance.id)
                if instance.id in self.ended or boot is None or boot.phase != "running":
                    continue
                if not self.pick(instance):
                    continue
                message = f"{self.code}: {self.message}"
                instance.state_reason = StateReason(message, self.code)
                instance._reason = message
                instance._state.code = 48
                instance._state.name = "terminated"
                self.ended.append(instance.id)
                if self.done():
                    return
