"""What an AWS call raises when AWS refuses, throttles past the retries, or is gone.

The one place outside `aws/` code learns the SDK's exception types from: the fleet catches
`AWS_ERRORS` around calls whose failure must not end a run (terminating an instance after
its result is stored, the end-of-run sweep when the endpoint has vanished) without
importing botocore itself.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

AWS_ERRORS: tuple[type[Exception], ...] = (ClientError, BotoCoreError)
"""Refused (ClientError: denied, throttled past the retries, a race EC2 reports) or
unreachable (BotoCoreError: connection refused, timeouts, a vanished endpoint)."""

REFUSED: tuple[type[Exception], ...] = (ClientError,)
"""AWS answered, and said no: retrying after describing again may succeed."""
