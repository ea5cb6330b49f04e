"""Presigned URLs die with the temporary credentials that signed them: the run warns.

The credentials come from the standard chain (environment variables with a session token
and AWS_CREDENTIAL_EXPIRATION, as an assumed role or SSO export gives them); botocore then
knows when they expire.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from instbench.aws.session import AwsSession, AwsSettings
from instbench.fleet.plan import FleetOptions
from instbench.fleet.run import credentials_warning, plan_run


def _session(
    monkeypatch: pytest.MonkeyPatch, endpoint: str, expires: datetime | None
) -> AwsSession:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIATESTTESTTESTTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    if expires is None:
        monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
        monkeypatch.delenv("AWS_CREDENTIAL_EXPIRATION", raising=False)
    else:
        monkeypatch.setenv("AWS_SESSION_TOKEN", "token")
        monkeypatch.setenv("AWS_CREDENTIAL_EXPIRATION", expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return AwsSession(AwsSettings(region="us-east-1", endpoint_url=endpoint))


@pytest.mark.parametrize(
    ("minutes_left", "warned"),
    [(15, True), (49, True), (120, False), (None, False)],
)
def test_warns_when_credentials_expire_before_the_urls(
    monkeypatch: pytest.MonkeyPatch,
    moto_endpoint: str,
    minutes_left: int | None,
    warned: bool,
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    expires = now + timedelta(minutes=minutes_left) if minutes_left is not None else None
    session = _session(monkeypatch, moto_endpoint, expires)
    assert session.credentials_expiry() == expires
    session.s3().create_bucket(Bucket="instbench-expiry-test")
    opts = FleetOptions(
        instance_types=["m7i.large"],
        benchmarks=("stream",),
        bucket="instbench-expiry-test",
        timeout_s=20 * 60,
        collection_method="sandbox",  # no Service Quotas on moto
    )
    plan = plan_run(session, opts, now)
    # 20 min timeout + 30 min URL margin = 50 min of validity needed.
    warning = credentials_warning(session, plan, now)
    assert (warning is not None) == warned
    if warning:
        assert warning.startswith("warning: the AWS credentials expire at")
        assert "--timeout" in warning and "\n" not in warning
