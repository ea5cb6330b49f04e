"""The sandbox IMDS against a real moto server: identity from DescribeInstances, IMDSv2 rules.

The agent's own IMDS client (`instbench.agent.imds.fetch_identity`) is the consumer that
matters, so it is used as the client where the protocol is not the point of the test.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from instbench.agent.imds import fetch_identity
from instbench.aws.session import AwsSession
from instbench.sandbox.imds import IDENTITY_ENV, ImdsServer, overrides_from_env

AL2023_X86 = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64"


def _launch(session: AwsSession, tokens: str = "required", user_data: str = "") -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "ImageId": session.ssm().get_parameter(Name=AL2023_X86)["Parameter"]["Value"],
        "InstanceType": "m7i.large",
        "MinCount": 1,
        "MaxCount": 1,
        "MetadataOptions": {"HttpTokens": tokens, "HttpEndpoint": "enabled"},
    }
    if user_data:
        kwargs["UserData"] = user_data
    return dict(session.ec2().run_instances(**kwargs)["Instances"][0])


@pytest.fixture(autouse=True)
def _imds_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """conftest disables IMDS for boto3; the agent's client honours that too."""
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)


@pytest.fixture()
def imds(aws_session: AwsSession) -> Iterator[ImdsServer]:
    with ImdsServer(aws_session, overrides={}) as server:
        yield server


def _request(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    req = urllib.request.Request(
        url, method=method, headers=headers or {}, data=b"" if method == "PUT" else None
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _token(base: str, ttl: str = "60") -> str:
    status, body = _request(
        base + "latest/api/token", "PUT", {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
    )
    assert status == 200
    return body.decode()


def test_agent_reads_identity_of_the_instance(aws_session: AwsSession, imds: ImdsServer) -> None:
    inst = _launch(aws_session)
    iid = inst["InstanceId"]
    messages: list[str] = []
    identity = fetch_identity(imds.instance_endpoint(iid), log=messages.append)
    assert identity is not None, messages
    assert identity == {
        "instance_id": iid,
        "instance_type": "m7i.large",
        "availability_zone": inst["Placement"]["AvailabilityZone"],
        "ami_id": inst["ImageId"],
        "region": "us-east-1",
        "account_id": aws_session.sts().get_caller_identity()["Account"],
    }


def test_document_and_meta_data_agree_with_ec2(aws_session: AwsSession, imds: ImdsServer) -> None:
    inst = _launch(aws_session)
    base = imds.instance_endpoint(inst["InstanceId"])
    header = {"X-aws-ec2-metadata-token": _token(base)}
    status, raw = _request(base + "latest/dynamic/instance-identity/document", headers=header)
    assert status == 200
    doc = json.loads(raw)
    assert doc["architecture"] == "x86_64"
    assert doc["privateIp"] == inst["PrivateIpAddress"]
    assert doc["version"] == "2017-09-30"
    expected = {
        "instance-id": inst["InstanceId"],
        "instance-type": "m7i.large",
        "ami-id": inst["ImageId"],
        "local-ipv4": inst["PrivateIpAddress"],
        "placement/availability-zone": inst["Placement"]["AvailabilityZone"],
        "placement/region": "us-east-1",
    }
    for path, value in expected.items():
        assert _request(base + "latest/meta-data/" + path, headers=header) == (200, value.encode())
    status, listing = _request(base + "latest/meta-data/", headers=header)
    assert status == 200 and b"instance-type" in listing.split(b"\n")


def test_imdsv2_rules(aws_session: AwsSession, imds: ImdsServer) -> None:
    """Token required (401 without, with a foreign one, or a made-up one); TTL checked."""
    first, second = _launch(aws_session), _launch(aws_session)
    base = imds.instance_endpoint(first["InstanceId"])
    doc = base + "latest/dynamic/instance-identity/document"
    assert _request(doc)[0] == 401
    assert _request(doc, headers={"X-aws-ec2-metadata-token": "made-up"})[0] == 401
    foreign = _token(imds.instance_endpoint(second["InstanceId"]))
    assert _request(doc, headers={"X-aws-ec2-metadata-token": foreign})[0] == 401
    for ttl in ("0", "21601", "ten"):
        headers = {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
        assert _request(base + "latest/api/token", "PUT", headers)[0] == 400
    assert _request(base + "latest/api/token", "PUT")[0] == 400
    proxied = {"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.1"}
    assert _request(base + "latest/api/token", "PUT", proxied)[0] == 403
    assert _request(base + "latest/api/token", "POST")[0] == 405


def test_imdsv1_allowed_when_tokens_optional(aws_session: AwsSession, imds: ImdsServer) -> None:
    inst = _launch(aws_session, tokens="optional", user_data="#!/bin/bash\necho hi\n")
    base = imds.instance_endpoint(inst["InstanceId"])
    assert _request(base + "latest/meta-data/instance-id") == (200, inst["InstanceId"].encode())
    assert _request(base + "latest/user-data") == (200, b"#!/bin/bash\necho hi\n")
    bad = {"X-aws-ec2-metadata-token": "made-up"}
    assert _request(base + "latest/meta-data/instance-id", headers=bad)[0] == 401


def test_unknown_or_terminated_instance_is_404(aws_session: AwsSession, imds: ImdsServer) -> None:
    headers = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    for iid in ("i-0123456789abcdef0", "not-an-id"):
        assert _request(imds.instance_endpoint(iid) + "latest/api/token", "PUT", headers)[0] == 404
    inst = _launch(aws_session)
    aws_session.ec2().terminate_instances(InstanceIds=[inst["InstanceId"]])
    base = imds.instance_endpoint(inst["InstanceId"])
    assert _request(base + "latest/api/token", "PUT", headers)[0] == 404
    token_base = imds.instance_endpoint(_launch(aws_session)["InstanceId"])
    header = {"X-aws-ec2-metadata-token": _token(token_base)}
    assert _request(token_base + "latest/meta-data/no-such-thing", headers=header)[0] == 404


def test_identity_overrides_from_environment(aws_session: AwsSession) -> None:
    env = {
        "INSTBENCH_SANDBOX_INSTANCE_TYPE": "c7g.large",
        "INSTBENCH_SANDBOX_AVAILABILITY_ZONE": "us-east-1f",
        "INSTBENCH_SANDBOX_ACCOUNT_ID": "111122223333",
        "INSTBENCH_SANDBOX_ARCHITECTURE": "",  # empty: not an override
        "UNRELATED": "x",
    }
    overrides = overrides_from_env(env)
    assert overrides == {
        "instanceType": "c7g.large",
        "availabilityZone": "us-east-1f",
        "accountId": "111122223333",
    }
    assert set(IDENTITY_ENV.values()) >= set(env) - {"UNRELATED"}
    inst = _launch(aws_session)
    with ImdsServer(aws_session, overrides=overrides) as server:
        base = server.instance_endpoint(inst["InstanceId"])
        header = {"X-aws-ec2-metadata-token": _token(base)}
        assert _request(base + "latest/meta-data/instance-type", headers=header) == (
            200,
            b"c7g.large",
        )
        identity = fetch_identity(base)
    assert identity is not None
    assert identity["instance_type"] == "c7g.large"
    assert identity["availability_zone"] == "us-east-1f"
    assert identity["account_id"] == "111122223333"
    assert identity["instance_id"] == inst["InstanceId"]


def test_refuses_non_loopback_and_unknown_fields(aws_session: AwsSession) -> None:
    with pytest.raises(ValueError, match="loopback"):
        ImdsServer(aws_session, host="0.0.0.0")
    with pytest.raises(ValueError, match="unknown identity fields: colour"):
        ImdsServer(aws_session, overrides={"colour": "blue"})
