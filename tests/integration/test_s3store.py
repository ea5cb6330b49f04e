"""The S3 store against moto over HTTP: bucket checks, never-overwrite, presigned URLs.

moto does not verify presigned signatures at all (a PUT to another key with the same
signature succeeds there), so scoping is proven the way S3 proves it: the test verifies
the SigV4 query signature itself (an independent implementation of the AWS algorithm),
and shows it holds for the URL as issued and fails for another key or content type.
"""

from __future__ import annotations

import hashlib
import hmac
import shutil
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from instbench.aws.session import AwsSession, AwsSettings
from instbench.errors import AwsConfigError
from instbench.storage.local import AlreadyExists
from instbench.storage.s3 import ObjectNotFound, S3Store

SECRET = "testing"  # tests/conftest.py sets AWS_SECRET_ACCESS_KEY=testing


@pytest.fixture()
def store(aws_session: AwsSession) -> S3Store:
    aws_session.s3().create_bucket(Bucket="bench-results")
    return S3Store(aws_session, "bench-results")


def session_of_account(endpoint: str, account: str, region: str = "us-east-1") -> AwsSession:
    """A session acting as another moto account (moto reads the x-moto-account-id header)."""
    session = AwsSession(AwsSettings(region=region, endpoint_url=endpoint))

    def as_account(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account

    session.register_hook("before-send.*.*", as_account)
    return session


# ---------------------------------------------------------------- the bucket


def test_check_bucket_accepts_own_bucket(store: S3Store) -> None:
    store.check_bucket()
    store.check_bucket(expected_owner="123456789012")


def test_missing_bucket_is_one_line(aws_session: AwsSession) -> None:
    with pytest.raises(AwsConfigError) as err:
        S3Store(aws_session, "no-such-bucket").check_bucket()
    assert str(err.value) == (
        "bucket no-such-bucket does not exist: create it with instbench infra setup "
        "or pass --bucket"
    )


def test_bucket_of_another_account_is_rejected(moto_endpoint: str, aws_session: AwsSession) -> None:
    session_of_account(moto_endpoint, "111122223333").s3().create_bucket(Bucket="theirs")
    with pytest.raises(AwsConfigError, match="bucket theirs belongs to another AWS account"):
        S3Store(aws_session, "theirs").check_bucket()


def test_expected_owner_403_is_one_line(store: S3Store) -> None:
    """Real S3 answers 403 to HeadBucket when ExpectedBucketOwner differs (moto ignores it)."""
    from botocore.awsrequest import AWSResponse

    def forbid(params: dict[str, Any], **_: Any) -> Any:
        # before-call sees the serialized request: the owner travels as a header.
        if params["headers"].get("x-amz-expected-bucket-owner") == "999999999999":
            body = {"Error": {"Code": "403", "Message": "Forbidden"}}
            body["ResponseMetadata"] = {"HTTPStatusCode": 403}  # type: ignore[assignment]
            return AWSResponse("https://s3", 403, {}, None), body
        return None

    store.session.register_hook("before-call.s3.HeadBucket", forbid)
    with pytest.raises(AwsConfigError, match="belongs to another AWS account or denies"):
        store.check_bucket(expected_owner="999999999999")


def test_bucket_in_another_region_is_rejected(moto_endpoint: str, aws_session: AwsSession) -> None:
    west = AwsSession(AwsSettings(region="eu-west-1", endpoint_url=moto_endpoint))
    west.s3().create_bucket(
        Bucket="west-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    with pytest.raises(AwsConfigError, match="is in eu-west-1, the run is in us-east-1"):
        S3Store(aws_session, "west-bucket").check_bucket()


@pytest.mark.parametrize("name", ["Bad_Name", "ab", "a..b", "x" * 64, "-lead"])
def test_invalid_bucket_names(aws_session: AwsSession, name: str) -> None:
    with pytest.raises(AwsConfigError, match="invalid S3 bucket name"):
        S3Store(aws_session, name)


# ---------------------------------------------------------------- objects


def test_put_new_never_overwrites(store: S3Store) -> None:
    key = "raw/stream/m7i.large/us-east-1/2026/01/02/r-0.json"
    store.put_new(key, b'{"v": 1}', "application/json")
    with pytest.raises(AlreadyExists):
        store.put_new(key, b'{"v": 2}', "application/json")
    assert store.get(key) == b'{"v": 1}'
    size, etag = store.head(key) or (0, "")
    assert size == 8 and etag == hashlib.md5(b'{"v": 1}').hexdigest()


def test_put_replace_get_head_list_delete(store: S3Store) -> None:
    store.put_replace("runs/r/manifest.json", b"1", "application/json")
    store.put_replace("runs/r/manifest.json", b"22", "application/json")
    assert store.get("runs/r/manifest.json") == b"22"
    assert store.head("runs/r/missing.json") is None
    with pytest.raises(ObjectNotFound):
        store.get("runs/r/missing.json")
    for i in range(3):
        store.put_new(f"logs/r/t{i}.log", b"x", "text/plain")
    assert store.list("logs/") == ["logs/r/t0.log", "logs/r/t1.log", "logs/r/t2.log"]
    assert list(store.keys("runs/")) == ["runs/r/manifest.json"]
    store.delete("logs/r/t1.log")
    store.delete("logs/r/t1.log")  # already gone: fine
    assert store.list("logs/") == ["logs/r/t0.log", "logs/r/t2.log"]


def test_list_pages_through_many_keys(store: S3Store) -> None:
    calls: list[str] = []
    store.session.register_hook("before-call.s3.ListObjectsV2", lambda **_: calls.append("list"))
    for i in range(5):
        store.put_new(f"many/{i}", b"", "text/plain")
    assert store.list("many/", page_size=2) == [f"many/{i}" for i in range(5)]
    assert len(calls) == 3


def test_writing_to_a_missing_bucket_is_a_config_error(aws_session: AwsSession) -> None:
    with pytest.raises(AwsConfigError, match="does not exist"):
        S3Store(aws_session, "gone-bucket").put_new("k", b"x", "text/plain")


# ---------------------------------------------------------------- presigned URLs


def sigv4_query_signature_valid(method: str, url: str, headers: dict[str, str]) -> bool:
    """Verify an S3 presigned (SigV4 query) URL the way S3 does; independent of botocore."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    params = dict(query)
    if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        return False
    signed = params["X-Amz-SignedHeaders"].split(";")
    all_headers = {k.lower(): v.strip() for k, v in headers.items()} | {"host": parts.netloc}
    canonical_headers = "".join(f"{name}:{all_headers.get(name, '')}\n" for name in signed)

    def enc(text: str) -> str:
        return urllib.parse.quote(text, safe="-_.~")

    canonical_query = "&".join(
        f"{enc(k)}={enc(v)}" for k, v in sorted(query) if k != "X-Amz-Signature"
    )
    canonical_request = "\n".join(
        [
            method,
            parts.path,
            canonical_query,
            canonical_headers,
            ";".join(signed),
            "UNSIGNED-PAYLOAD",
        ]
    )
    _access_key, date, region, service, terminator = params["X-Amz-Credential"].split("/")
    scope = f"{date}/{region}/{service}/{terminator}"
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            params["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = f"AWS4{SECRET}".encode()
    for part in (date, region, service, terminator):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, params["X-Amz-Signature"])


def put(url: str, data: bytes, content_type: str) -> int:
    request = urllib.request.Request(
        url, data=data, method="PUT", headers={"Content-Type": content_type}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return int(response.status)


def test_presigned_put_works_over_http_and_is_scoped_to_its_key(store: S3Store) -> None:
    key = "incoming/r-1/m7i.large-stream-0/result.json"
    url = store.presign_put(key, 600, "application/json")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url  # SigV4, not the key-agnostic SigV2
    assert put(url, b'{"ok": true}', "application/json") == 200
    assert store.get(key) == b'{"ok": true}'

    json_header = {"Content-Type": "application/json"}
    assert sigv4_query_signature_valid("PUT", url, json_header)
    other_key = url.replace("/result.json?", "/other.json?")
    assert not sigv4_query_signature_valid("PUT", other_key, json_header)
    other_run = url.replace("/r-1/", "/r-2/")
    assert not sigv4_query_signature_valid("PUT", other_run, json_header)
    assert not sigv4_query_signature_valid("PUT", url, {"Content-Type": "text/html"})
    assert not sigv4_query_signature_valid("GET", url, json_header)
    longer = url.replace("X-Amz-Expires=600", "X-Amz-Expires=604800")
    assert not sigv4_query_signature_valid("PUT", longer, json_header)


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_presigned_put_with_curl_as_the_user_data_does(store: S3Store, tmp_path: Any) -> None:
    key = "logs/r-1/m7i.large-stream-0.log"
    url = store.presign_put(key, 600, "text/plain")
    log = tmp_path / "agent.log"
    log.write_text("agent log\n")
    subprocess.run(
        ["curl", "-fsS", "--retry", "5", "--retry-connrefused", "-X", "PUT",
         "-H", "Content-Type: text/plain", "--upload-file", str(log), url],
        check=True, timeout=30,
    )  # fmt: skip
    assert store.get(key) == b"agent log\n"


def test_presigned_get_fetches_exactly_its_object(store: S3Store) -> None:
    store.put_new("artifacts/" + "a" * 64 + ".pyz", b"zipapp", "application/zip")
    url = store.presign_get("artifacts/" + "a" * 64 + ".pyz", 60)
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"zipapp"
    assert sigv4_query_signature_valid("GET", url, {})
    assert not sigv4_query_signature_valid("GET", url.replace("/artifacts/a", "/artifacts/b"), {})


@pytest.mark.parametrize("seconds", [0, -5, 7 * 24 * 3600 + 1])
def test_presign_lifetime_is_bounded(store: S3Store, seconds: int) -> None:
    with pytest.raises(ValueError):
        store.presign_put("k", seconds, "text/plain")
