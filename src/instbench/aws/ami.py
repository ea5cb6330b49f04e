"""Which image an instance boots: the latest Amazon Linux 2023, or the user's `--ami`.

AWS publishes the current AL2023 image id per architecture as public SSM parameters, so
the lookup needs no owner filters or name sorting and always gets the patched image. An
`--ami` override is checked against the instance type's architecture here, because EC2
rejects a mismatch only at launch time (and moto not at all).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from instbench.aws.regions import aws_config_errors
from instbench.aws.session import AwsSession
from instbench.errors import AwsConfigError, UserError

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import ImageTypeDef

SSM_PARAMETERS = {
    "x86_64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64",
    "arm64": "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64",
}

_AMI_ID = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")


@dataclass(frozen=True)
class ImageInfo:
    """The facts of an image that a launch needs (architecture, root device and size)."""

    image_id: str
    architecture: str
    name: str
    root_device_name: str
    root_snapshot_gib: int | None
    owner_id: str
    creation_date: str
    source: str
    """Where the id came from: the SSM parameter name, or '--ami'."""


def _info(image: ImageTypeDef, source: str) -> ImageInfo:
    root = image.get("RootDeviceName", "/dev/xvda")
    size = None
    for mapping in image.get("BlockDeviceMappings", []):
        if mapping.get("DeviceName") == root and "Ebs" in mapping:
            size = mapping["Ebs"].get("VolumeSize")
    return ImageInfo(
        image_id=image["ImageId"],
        architecture=image.get("Architecture", "unknown"),
        name=image.get("Name", ""),
        root_device_name=root,
        root_snapshot_gib=size,
        owner_id=image.get("OwnerId", ""),
        creation_date=image.get("CreationDate", ""),
        source=source,
    )


def describe_image(session: AwsSession, ami_id: str, source: str = "--ami") -> ImageInfo:
    """One image by id; UserError (one line) when malformed, missing or not available."""
    if not _AMI_ID.match(ami_id):
        raise UserError(f"malformed AMI id {ami_id!r}: expected ami- and 8 or 17 hex digits")
    with aws_config_errors("AWS EC2"):
        try:
            images = session.ec2().describe_images(ImageIds=[ami_id])["Images"]
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code.startswith("InvalidAMIID"):
                images = []
            else:
                raise
    if not images:
        raise UserError(f"AMI {ami_id} not found in {session.region} (or not visible to you)")
    image = images[0]
    if image.get("State") != "available":
        raise UserError(f"AMI {ami_id} is {image.get('State')}, not available")
    return _info(image, source)


def check_ami(session: AwsSession, ami_id: str, architecture: str) -> ImageInfo:
    """The image of `--ami`, if it exists and is built for `architecture`."""
    info = describe_image(session, ami_id)
    if info.architecture != architecture:
        raise UserError(
            f"AMI {ami_id} is built for {info.architecture}, but the instance type needs "
            f"{architecture}: pass an {architecture} AMI or drop --ami"
        )
    return info


def latest_al2023(session: AwsSession, architecture: str) -> ImageInfo:
    """The current Amazon Linux 2023 image for `architecture` in the session's region."""
    parameter = SSM_PARAMETERS.get(architecture)
    if parameter is None:
        raise UserError(
            f"no Amazon Linux 2023 image for architecture {architecture}: instbench runs "
            f"on {' and '.join(SSM_PARAMETERS)} types (mac types need dedicated hosts)"
        )
    with aws_config_errors("AWS SSM"):
        try:
            value = session.ssm().get_parameter(Name=parameter)["Parameter"].get("Value", "")
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code == "ParameterNotFound":
                raise AwsConfigError(
                    f"SSM parameter {parameter} not found in {session.region}: pass --ami ID"
                ) from exc
            raise
    info = describe_image(session, value, source=parameter)
    if info.architecture != architecture:  # a wrong public parameter is not our bug to hide
        raise AwsConfigError(
            f"{parameter} points to {value}, which is {info.architecture}: pass --ami ID"
        )
    return info
