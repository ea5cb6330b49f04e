"""Integration fixtures: every AWS operation instbench's controller code calls is recorded.

`aws_session` is overridden so that the session every integration test uses carries a
botocore `before-call` hook. The hook attributes each call to the first instbench module
on the stack; calls made by test code itself, by the simulated instances (`instbench.sandbox`)
and by the administrator's `infra` commands are not the controller's and are not recorded.
The union over the session is written to `build/aws-operations[-<worker>].json` for the
policy audit (tests/integration/test_policy_audit.py has a self-contained audit as well).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from instbench.aws.session import AwsSession

_SKIP_PREFIXES = ("botocore.", "boto3.", "s3transfer.", "urllib3.", "instbench.aws.session")
_NOT_CONTROLLER = ("instbench.sandbox", "instbench.aws.infra", "instbench.cli.infra_cmd")


class OperationRecorder:
    """Collects `service:Operation` -> calling modules, for the controller's calls only."""

    def __init__(self) -> None:
        self.calls: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    def hook(self, model: Any, **_: Any) -> None:
        """botocore before-call handler (registered with AwsSession.register_hook)."""
        caller = controller_caller()
        if caller is None:
            return
        operation = f"{model.service_model.service_name}:{model.name}"
        with self._lock:
            self.calls.setdefault(operation, set()).add(caller)

    def attach(self, session: AwsSession) -> AwsSession:
        session.register_hook("before-call.*.*", self.hook)
        return session

    def as_mapping(self) -> dict[str, list[str]]:
        with self._lock:
            return {op: sorted(callers) for op, callers in sorted(self.calls.items())}


def controller_caller() -> str | None:
    """The instbench module that made the current AWS call, or None if not the controller."""
    frame = sys._getframe(1)
    caller: str | None = None
    while frame is not None:
        module = str(frame.f_globals.get("__name__", ""))
        if module.startswith(_NOT_CONTROLLER):
            return None
        if caller is None and module != __name__ and not module.startswith(_SKIP_PREFIXES):
            if not module.startswith("instbench."):
                return None  # test code (or a library) calling AWS directly
            caller = module
        frame = frame.f_back  # type: ignore[assignment]
    return caller


_RECORDER = OperationRecorder()


@pytest.fixture(scope="session")
def operation_recorder() -> OperationRecorder:
    """The session-wide recorder (one per xdist worker)."""
    return _RECORDER


@pytest.fixture()
def aws_session(aws_session: AwsSession, operation_recorder: OperationRecorder) -> AwsSession:
    """The shared fixture's session, with the operation recorder attached."""
    return operation_recorder.attach(aws_session)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write what was recorded, for the audit and for humans."""
    calls = _RECORDER.as_mapping()
    if not calls:
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    name = f"aws-operations-{worker}.json" if worker else "aws-operations.json"
    out = Path(str(session.config.rootpath)) / "build" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(calls, indent=2, sort_keys=True) + "\n", encoding="utf-8")
