"""Typed errors.

`UserError` and its subclasses are mistakes the user can fix (bad input, missing tool,
wrong region): the CLI prints their one-line message and exits with code 2, and they are
always raised before any AWS resource is created. Other `InstbenchError`s are failures of a
run (capacity, timeouts) and exit 1.
"""

from __future__ import annotations


class InstbenchError(Exception):
    """Base of every error instbench raises on purpose."""

    exit_code = 1


class UserError(InstbenchError):
    """Bad input or environment the user can correct; exit code 2, nothing created."""

    exit_code = 2


class InvalidInstanceType(UserError):
    """An instance type name that is malformed, unknown or not offered where asked."""


class InvalidBenchmark(UserError):
    """A benchmark name or parameter the registry does not accept."""


class InvalidResult(InstbenchError):
    """A result document that fails the schema or plausibility checks.

    Not a UserError: a bad document from an instance is a failed task, and is quarantined.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StorageError(UserError):
    """An output location that cannot be written (permissions, full, not a directory)."""


class AwsConfigError(UserError):
    """Missing credentials, wrong region, unreachable endpoint, foreign bucket."""


class PricesUnavailable(InstbenchError):
    """AWS price APIs answered with an error or could not be reached; `str()` says which,
    in a form fit for a plan's "prices unknown: ..." line."""


class CapacityError(InstbenchError):
    """EC2 could not provide the instance (InsufficientInstanceCapacity, Unsupported...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class QuotaExceeded(InstbenchError):
    """An account quota cannot fit the request: the vCPU quota (or --vcpu-budget), or the
    placement groups a run with pair tasks creates."""


class CleanupInterrupted(InstbenchError):
    """A second Ctrl-C while the run was terminating its instances: exit now, tell how
    to finish (instances may still be running; their watchdogs end them eventually)."""

    exit_code = 130

    def __init__(self, run_id: str, why: str = "second Ctrl-C") -> None:
        super().__init__(
            f"{why}: exited before every instance of run {run_id} was terminated; "
            f"run: instbench cleanup --run-id {run_id}"
        )
        self.run_id = run_id


class CleanupIncomplete(InstbenchError):
    """The end of a run could not reach AWS to terminate what it launched (the endpoint
    vanished, or kept refusing): the journal and the local manifest are written, and the
    user is told the one command that finishes the job once AWS answers again."""

    exit_code = 1

    def __init__(self, run_id: str, reason: str) -> None:
        super().__init__(
            f"run {run_id} ended but could not terminate its instances ({reason}); "
            f"when AWS answers again, run: instbench cleanup --run-id {run_id}"
        )
        self.run_id = run_id


class TaskTimeout(InstbenchError):
    """An instance did not report a result before the run's timeout."""


class UserDataTooLarge(UserError):
    """Rendered user data over EC2's 16 KB limit (moto accepts it; EC2 does not)."""


class LaunchRejected(UserError):
    """EC2 refused the launch request itself (bad parameter, AMI, subnet, key pair...).

    Retrying elsewhere would not help, unlike a `CapacityError`.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
