"""Region names are checked offline; credentials with STS, as one line when missing."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from instbench.aws import regions
from instbench.aws.session import AwsSession, AwsSettings
from instbench.errors import AwsConfigError


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-3", "ap-southeast-2", "cn-north-1"])
def test_known_regions_pass(region: str) -> None:
    assert regions.check_region(region) == region


@pytest.mark.parametrize(
    ("typo", "hint"),
    [
        ("useast1", "us-east-1"),
        ("us-east-9", "us-east-"),
        ("US-EAST-1", "us-east-1"),
        ("eu-wset-1", "eu-west-1"),
        ("us_west_2", "us-west-2"),
    ],
)
def test_typos_name_a_close_match(typo: str, hint: str) -> None:
    with pytest.raises(AwsConfigError) as err:
        regions.check_region(typo)
    message = str(err.value)
    assert "\n" not in message
    assert f"did you mean {hint}" in message


def test_nonsense_region_has_no_hint() -> None:
    with pytest.raises(AwsConfigError, match=r"unknown AWS region 'banana'$"):
        regions.check_region("banana")


def test_unknown_but_plausible_region_suggests_upgrading() -> None:
    with pytest.raises(AwsConfigError, match="upgrade"):
        regions.check_region("zz-nowhere-7")


def test_known_regions_cover_partitions() -> None:
    known = regions.known_regions()
    assert {"us-east-1", "us-gov-west-1", "cn-northwest-1"} <= set(known)


def test_check_credentials_returns_the_account(aws_session: AwsSession) -> None:
    assert regions.check_credentials(aws_session) == "123456789012"


def test_no_credentials_is_one_line(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    session = AwsSession(AwsSettings(region="us-east-1", endpoint_url=moto_endpoint))
    with pytest.raises(AwsConfigError) as err:
        regions.check_credentials(session)
    assert str(err.value) == regions.NO_CREDENTIALS
    assert str(err.value).startswith("no AWS credentials found: configure a profile (--profile)")


def test_rejected_credentials_are_one_line(aws_session: AwsSession) -> None:
    def reject(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = {
            "Error": {"Code": "InvalidClientTokenId", "Message": "The token is invalid."},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return AWSResponse("https://sts", 403, {}, None), body

    aws_session.register_hook("before-call.sts.GetCallerIdentity", reject)
    with pytest.raises(AwsConfigError, match=r"rejected the credentials \(InvalidClientTokenId\)"):
        regions.check_credentials(aws_session)


def test_unreachable_endpoint_is_one_line() -> None:
    # Port 9 on loopback: connection refused at once; one attempt keeps the test fast.
    session = AwsSession(
        AwsSettings(region="us-east-1", endpoint_url="http://127.0.0.1:9", max_attempts=1)
    )
    with pytest.raises(AwsConfigError, match="cannot reach AWS STS"):
        regions.check_credentials(session)
