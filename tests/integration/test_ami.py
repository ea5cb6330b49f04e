"""AMI lookup against moto: SSM public parameters per architecture and the --ami check.

moto ships the AL2023 public parameters and the images they point to (checked here, so a
moto upgrade that drops them fails loudly), so no setup is needed for the happy path.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from instbench.aws import ami
from instbench.aws.session import AwsSession
from instbench.errors import AwsConfigError, UserError


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_latest_al2023_per_architecture(aws_session: AwsSession, arch: str) -> None:
    info = ami.latest_al2023(aws_session, arch)
    assert info.image_id.startswith("ami-")
    assert info.architecture == arch
    assert info.name.startswith("al2023-ami-")
    assert info.source == ami.SSM_PARAMETERS[arch]
    assert info.root_device_name == "/dev/xvda"


def test_unsupported_architecture_is_a_user_error(aws_session: AwsSession) -> None:
    with pytest.raises(UserError, match="no Amazon Linux 2023 image for architecture arm64_mac"):
        ami.latest_al2023(aws_session, "arm64_mac")


def test_missing_parameter_says_pass_ami(aws_session: AwsSession) -> None:
    """A partition or region without the public parameter: one line, pointing at --ami."""

    def not_found(**_: Any) -> tuple[AWSResponse, dict[str, Any]]:
        body = {
            "Error": {"Code": "ParameterNotFound", "Message": ""},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        }
        return AWSResponse("https://ssm", 400, {}, None), body

    aws_session.register_hook("before-call.ssm.GetParameter", not_found)
    with pytest.raises(AwsConfigError, match=r"not found in us-east-1: pass --ami ID$"):
        ami.latest_al2023(aws_session, "arm64")


def test_check_ami_accepts_matching_architecture(aws_session: AwsSession) -> None:
    arm = ami.latest_al2023(aws_session, "arm64").image_id
    info = ami.check_ami(aws_session, arm, "arm64")
    assert info.image_id == arm and info.source == "--ami"


def test_check_ami_rejects_wrong_architecture(aws_session: AwsSession) -> None:
    """moto would boot an arm64 image on m7i.large; EC2 refuses, and so do we, earlier."""
    arm = ami.latest_al2023(aws_session, "arm64").image_id
    with pytest.raises(UserError) as err:
        ami.check_ami(aws_session, arm, "x86_64")
    assert str(err.value) == (
        f"AMI {arm} is built for arm64, but the instance type needs x86_64: "
        "pass an x86_64 AMI or drop --ami"
    )


@pytest.mark.parametrize(
    ("ami_id", "message"),
    [
        ("ami-0123456789abcdef0", "not found in us-east-1"),
        ("ami-12345678", "not found in us-east-1"),
        ("ami-XYZ", "malformed AMI id"),
        ("ami-0123;rm -rf /", "malformed AMI id"),
        ("", "malformed AMI id"),
    ],
)
def test_check_ami_missing_or_malformed(aws_session: AwsSession, ami_id: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        ami.check_ami(aws_session, ami_id, "x86_64")


def test_copied_image_is_checked_and_must_be_available(aws_session: AwsSession) -> None:
    """A private copy (CopyImage: setup outside our code path) is found, then refused
    once it is disabled. (moto's RegisterImage ignores Architecture, hence a copy.)"""
    ec2 = aws_session.ec2()
    source = ami.latest_al2023(aws_session, "arm64").image_id
    image_id = ec2.copy_image(SourceImageId=source, SourceRegion="us-east-1", Name="mine")[
        "ImageId"
    ]
    info = ami.check_ami(aws_session, image_id, "arm64")
    assert info.image_id == image_id and info.architecture == "arm64"
    ec2.disable_image(ImageId=image_id)
    with pytest.raises(UserError, match=f"AMI {image_id} is disabled, not available"):
        ami.check_ami(aws_session, image_id, "arm64")
