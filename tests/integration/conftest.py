"""Integration fixtures: every AWS operation instbench's controller code calls is recorded.

For the whole test session a botocore `before-call` hook is registered process-wide
(`register_process_hook`), so every `AwsSession` created afterwards carries it: the
fixtures' sessions and those the code under test builds itself (the fleet, `open_target`,
fault-injection sessions). The hook attributes each call to the first instbench module
on the stack; calls made by test code itself, by the simulated instances (`instbench.sandbox`)
and by the administrator's `infra` commands are not the controller's and are not recorded.
The union over the session is written to `build/aws-operations[-<worker>].json`, and any
operation in it that the IAM policy does not authorise is reported at the end of the run
(tests/integration/test_policy_audit.py has a self-contained, failing audit as well).
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from instbench.aws.policy import RecordedCall, audit
from instbench.aws.session import AwsSession, register_process_hook, unregister_process_hook

_EVENT = "before-call.*.*"
_SKIP_PREFIXES = ("botocore.", "boto3.", "s3transfer.", "urllib3.", "instbench.aws.session")
_NOT_CONTROLLER = ("instbench.sandbox", "instbench.aws.infra", "instbench.cli.infra_cmd")


class OperationRecorder:
    """Collects `service:Operation` -> calling modules, for the controller's calls only.

    A recorder attached to one session (`attach`) also keeps every call whole: its
    region, parameters and response (`RecordedCall`), for `policy.denied_calls`.
    """

    def __init__(self) -> None:
        self.calls: dict[str, set[str]] = {}
        self.requests: list[RecordedCall] = []
        self._lock = threading.Lock()

    def params_hook(self, params: Any, model: Any, context: Any, **_: Any) -> None:
        """botocore before-parameter-build: the API parameters, before serialisation."""
        if controller_caller() is None or context is None:
            return
        kept = {k: v for k, v in params.items() if k != "Body"}
        operation = f"{model.service_model.service_name}:{model.name}"
        context["instbench_audit"] = (operation, str(context.get("client_region")), kept)

    def response_hook(self, parsed: Any, context: Any, **_: Any) -> None:
        """botocore after-call: the response completes the call kept by params_hook."""
        started = (context or {}).pop("instbench_audit", None)
        if started is None:
            return
        operation, region, params = started
        response = parsed if isinstance(parsed, dict) else None
        with self._lock:
            self.requests.append(RecordedCall(operation, region, params, response))

    def hook(self, model: Any, **_: Any) -> None:
        """botocore before-call handler (registered with AwsSession.register_hook)."""
        caller = controller_caller()
        if caller is None:
            return
        operation = f"{model.service_model.service_name}:{model.name}"
        with self._lock:
            self.calls.setdefault(operation, set()).add(caller)

    def attach(self, session: AwsSession) -> AwsSession:
        """Record the calls of one session only (a self-contained audit), whole."""
        session.register_hook(_EVENT, self.hook)
        session.register_hook("before-parameter-build.*.*", self.params_hook)
        session.register_hook("after-call.*.*", self.response_hook)
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


@pytest.fixture(scope="session", autouse=True)
def operation_recorder() -> Iterator[OperationRecorder]:
    """The session-wide recorder (one per xdist worker), on every AwsSession created."""
    register_process_hook(_EVENT, _RECORDER.hook)
    try:
        yield _RECORDER
    finally:
        unregister_process_hook(_EVENT, _RECORDER.hook)


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
    # Only what is missing can be judged here: a run of a subset of the tests leaves
    # permissions unused without anything being wrong.
    missing = audit(calls).missing
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if missing and reporter is not None:
        for op, callers in sorted(missing.items()):
            reporter.write_line(
                f"policy audit: {op} (called from {', '.join(callers)}) is not in "
                "instbench.aws.policy; see tests/integration/test_policy_audit.py",
                red=True,
            )
