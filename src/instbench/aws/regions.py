"""Region names and credentials: checked first, so a typo or a missing login is one line.

A region typo is otherwise found late and badly: boto3 builds an endpoint for any string
(`ec2.us-east-9.amazonaws.com`) and fails with a DNS error after its retries. botocore ships
the list of regions per partition, so the check needs no network call. Credentials are
checked with STS GetCallerIdentity, the one call every principal may make.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Iterator
from contextlib import contextmanager

import botocore.exceptions
import botocore.session

from instbench.aws.session import AwsSession
from instbench.errors import AwsConfigError

_REGION_SHAPE = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")

NO_CREDENTIALS = (
    "no AWS credentials found: configure a profile (--profile) or set AWS_ACCESS_KEY_ID "
    "and AWS_SECRET_ACCESS_KEY (or run aws sso login / aws configure)"
)


@functools.lru_cache(maxsize=4)
def known_regions(service: str = "ec2") -> tuple[str, ...]:
    """Every region botocore knows for `service`, in all partitions (offline).

    Read with no profile: the list is botocore's data, the same for every profile, and a
    profile that exists only elsewhere (AWS_PROFILE, a sandbox run) must not break it.
    """
    session = botocore.session.Session(session_vars={"profile": (None, None, None, None)})
    found: set[str] = set()
    for partition in session.get_available_partitions():
        found.update(session.get_available_regions(service, partition_name=partition))
    return tuple(sorted(found))


def _close_match(text: str, choices: tuple[str, ...]) -> str | None:
    """The known region `text` most likely meant ('useast1' -> 'us-east-1')."""
    squeezed = {c.replace("-", ""): c for c in choices}
    key = text.lower().replace("-", "").replace("_", "").strip()
    if key in squeezed:
        return squeezed[key]
    match = difflib.get_close_matches(text.lower(), choices, n=1, cutoff=0.6)
    return match[0] if match else None


def check_region(region: str) -> str:
    """Return `region` if EC2 exists there, else AwsConfigError naming a close match."""
    choices = known_regions("ec2")
    if region in choices:
        return region
    hint = _close_match(region, choices)
    suggestion = f" (did you mean {hint}?)" if hint else ""
    if _REGION_SHAPE.match(region) and not hint:
        suggestion = " (if it is a new region, upgrade boto3/botocore)"
    raise AwsConfigError(f"unknown AWS region {region!r}{suggestion}")


@contextmanager
def aws_config_errors(what: str = "AWS") -> Iterator[None]:
    """Turn missing credentials and unreachable endpoints into one-line AwsConfigErrors.

    Used around the first calls of a command, so that a user without a login or with a
    wrong endpoint reads a sentence, not a botocore traceback.
    """
    try:
        yield
    except botocore.exceptions.NoCredentialsError as exc:
        raise AwsConfigError(NO_CREDENTIALS) from exc
    except (
        botocore.exceptions.PartialCredentialsError,
        botocore.exceptions.CredentialRetrievalError,
        botocore.exceptions.TokenRetrievalError,
        botocore.exceptions.SSOError,
    ) as exc:
        raise AwsConfigError(f"AWS credentials could not be loaded: {exc}") from exc
    except (
        botocore.exceptions.EndpointConnectionError,
        botocore.exceptions.ConnectTimeoutError,
    ) as exc:
        raise AwsConfigError(
            f"cannot reach {what}: {exc} (check --region, AWS_ENDPOINT_URL and the network)"
        ) from exc


_REJECTED_CREDENTIALS = {
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "ExpiredTokenException",
    "UnrecognizedClientException",
    "AccessDenied",
    "InvalidAccessKeyId",
}


def check_credentials(session: AwsSession) -> str:
    """The caller's account id (STS GetCallerIdentity); AwsConfigError when there is none."""
    with aws_config_errors("AWS STS"):
        if not session.has_credentials():
            raise AwsConfigError(NO_CREDENTIALS)
        try:
            identity = session.sts().get_caller_identity()
        except botocore.exceptions.ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "Unknown")
            if code in _REJECTED_CREDENTIALS:
                raise AwsConfigError(
                    f"AWS rejected the credentials ({code}): {error.get('Message', '')}".rstrip()
                ) from exc
            raise
    return identity["Account"]
