"""The S3 store: the bucket side of the storage tree, and presigned URLs for instances.

Raw results are written with `If-None-Match: *`, so S3 itself refuses to overwrite a
stored result (a resumed run, a duplicate PUT), exactly like `LocalStore.put_new`.
Instances never get credentials: they receive presigned URLs, each signed (SigV4) for one
method, one key and, for uploads, one content type, valid for the run's timeout.
"""

from __future__ import annotations

import builtins
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from instbench.aws.regions import aws_config_errors
from instbench.aws.session import AwsSession
from instbench.errors import AwsConfigError, StorageError
from instbench.storage.local import AlreadyExists

if TYPE_CHECKING:
    from mypy_boto3_s3.type_defs import HeadBucketRequestTypeDef

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4's limit
SETUP_HINT = "create it with instbench infra setup or pass --bucket"


class ObjectNotFound(KeyError):
    """The key does not exist in the bucket."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))


class S3Store:
    """One bucket, addressed with the keys of `storage.layout`."""

    def __init__(self, session: AwsSession, bucket: str) -> None:
        if not _BUCKET.fullmatch(bucket) or ".." in bucket:
            raise AwsConfigError(f"invalid S3 bucket name {bucket!r}")
        self.session = session
        self.bucket = bucket

    # ------------------------------------------------------------ the bucket

    def check_bucket(self, expected_owner: str | None = None) -> None:
        """Fail early (one line) unless the bucket exists, is ours and is in our region.

        `expected_owner` (an account id) goes to HeadBucket's ExpectedBucketOwner, so S3
        answers 403 for a bucket of another account. When it is not given, the caller's
        account is asked from STS. ListBuckets (which lists only the caller's own buckets)
        is consulted as well: moto ignores ExpectedBucketOwner, and a denied ListBuckets
        simply skips that second check.
        """
        s3 = self.session.s3()
        with aws_config_errors("AWS S3"):
            owner = expected_owner or self._account()
            request: HeadBucketRequestTypeDef = {"Bucket": self.bucket}
            if owner:
                request["ExpectedBucketOwner"] = owner
            try:
                head = s3.head_bucket(**request)
            except ClientError as exc:
                raise self._bucket_error(exc, owner) from exc
            headers = head.get("ResponseMetadata", {}).get("HTTPHeaders", {})
            region = headers.get("x-amz-bucket-region") or head.get("BucketRegion")
            if region and region != self.session.region:
                raise AwsConfigError(
                    f"bucket {self.bucket} is in {region}, the run is in "
                    f"{self.session.region}: use a bucket in the run's region"
                )
            try:
                listed = s3.list_buckets(Prefix=self.bucket).get("Buckets", [])
            except ClientError:
                return  # not allowed to list: HeadBucket's owner check stands alone
            if self.bucket not in {b.get("Name") for b in listed}:
                raise AwsConfigError(self._foreign(owner))

    def _account(self) -> str | None:
        try:
            return self.session.sts().get_caller_identity()["Account"]
        except ClientError:
            return None

    def _foreign(self, owner: str | None) -> str:
        mine = f" {owner}" if owner else ""
        return (
            f"bucket {self.bucket} belongs to another AWS account (not yours{mine}): {SETUP_HINT}"
        )

    def _bucket_error(self, exc: ClientError, owner: str | None) -> AwsConfigError:
        status, code = _status(exc), _code(exc)
        if status == 404 or code in {"404", "NoSuchBucket"}:
            return AwsConfigError(f"bucket {self.bucket} does not exist: {SETUP_HINT}")
        if status == 403 or code in {"403", "AccessDenied"}:
            return AwsConfigError(
                f"bucket {self.bucket} belongs to another AWS account or denies you access: "
                f"{SETUP_HINT}"
            )
        if status == 301 or code in {"301", "PermanentRedirect"}:
            region = (
                exc.response.get("ResponseMetadata", {})
                .get("HTTPHeaders", {})
                .get("x-amz-bucket-region", "another region")
            )
            return AwsConfigError(
                f"bucket {self.bucket} is in {region}, the run is in {self.session.region}: "
                "use a bucket in the run's region"
            )
        return AwsConfigError(f"cannot use bucket {self.bucket}: {code or status} {exc}")

    # ------------------------------------------------------------ objects

    def put_new(self, key: str, data: bytes, content_type: str) -> None:
        """Store `data` unless `key` exists (then `AlreadyExists`; S3 decides, atomically)."""
        try:
            self.session.s3().put_object(
                Bucket=self.bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                IfNoneMatch="*",
            )
        except ClientError as exc:
            if _code(exc) == "PreconditionFailed" or _status(exc) == 412:
                raise AlreadyExists(key) from exc
            raise self._object_error(exc, key) from exc

    def put_replace(self, key: str, data: bytes, content_type: str) -> None:
        """Write a derived object (manifests, processed data); raw results use put_new."""
        try:
            self.session.s3().put_object(
                Bucket=self.bucket, Key=key, Body=data, ContentType=content_type
            )
        except ClientError as exc:
            raise self._object_error(exc, key) from exc

    def get(self, key: str) -> bytes:
        """The object's bytes; `ObjectNotFound` when there is none."""
        try:
            response = self.session.s3().get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                raise ObjectNotFound(key) from exc
            raise self._object_error(exc, key) from exc
        return response["Body"].read()

    def get_bounded(self, key: str, limit: int, keep: int) -> tuple[bytes, int | None]:
        """At most `limit` bytes of an object that an untrusted party uploaded.

        Returns (body, None) when the object holds at most `limit` bytes, else
        (its first `keep` bytes, its size). The size is asked first (HEAD); then one ranged
        GET of at most `limit` + 1 bytes, so an object that grew after the HEAD is still
        seen to be too large without being read whole. A presigned PUT may carry up to
        5 GB: nothing here ever holds more than `limit` + 1 bytes of it.
        """
        found = self.head(key)
        if found is None:
            raise ObjectNotFound(key)
        size = found[0]
        if size > limit:
            return self._range(key, keep), size
        body = self._range(key, limit + 1)
        if len(body) > limit:
            return body[:keep], max(size, len(body))
        return body, None

    def _range(self, key: str, nbytes: int) -> bytes:
        """The first `nbytes` bytes of the object (fewer when it is shorter)."""
        if nbytes <= 0:
            return b""
        try:
            response = self.session.s3().get_object(
                Bucket=self.bucket, Key=key, Range=f"bytes=0-{nbytes - 1}"
            )
        except ClientError as exc:
            if _code(exc) in {"NoSuchKey", "404"}:
                raise ObjectNotFound(key) from exc
            if _code(exc) == "InvalidRange":
                return b""  # an empty object
            raise self._object_error(exc, key) from exc
        return bytes(response["Body"].read(nbytes))

    def head(self, key: str) -> tuple[int, str] | None:
        """(size, etag) of the object, or None when it does not exist."""
        try:
            response = self.session.s3().head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _status(exc) == 404 or _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise self._object_error(exc, key) from exc
        return int(response.get("ContentLength", 0)), str(response.get("ETag", "")).strip('"')

    def delete(self, key: str) -> None:
        """Remove the object (no error when it is already gone)."""
        try:
            self.session.s3().delete_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            raise self._object_error(exc, key) from exc

    def keys(self, prefix: str = "", page_size: int = 1000) -> Iterator[str]:
        """Keys under `prefix`, in S3's (lexicographic) order, page by page."""
        paginator = self.session.s3().get_paginator("list_objects_v2")
        pages = paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": page_size}
        )
        for page in pages:
            for obj in page.get("Contents", []):
                yield obj["Key"]

    def _object_error(self, exc: ClientError, key: str) -> Exception:
        code = _code(exc)
        if code == "NoSuchBucket":
            return AwsConfigError(f"bucket {self.bucket} does not exist: {SETUP_HINT}")
        if code in {"AccessDenied", "403"}:
            return StorageError(f"access denied to s3://{self.bucket}/{key}")
        return exc

    # ------------------------------------------------------------ presigned URLs

    def presign_get(self, key: str, expires_s: int) -> str:
        """A URL that lets its holder GET exactly `key` for `expires_s` seconds."""
        return str(
            self.session.s3().generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=_expiry(expires_s),
                HttpMethod="GET",
            )
        )

    def presign_put(self, key: str, expires_s: int, content_type: str) -> str:
        """A URL that lets its holder PUT exactly `key`, with exactly `content_type`."""
        return str(
            self.session.s3().generate_presigned_url(
                "put_object",
                Params={"Bucket": self.bucket, "Key": key, "ContentType": content_type},
                ExpiresIn=_expiry(expires_s),
                HttpMethod="PUT",
            )
        )

    def list(self, prefix: str = "", page_size: int = 1000) -> builtins.list[str]:
        """Every key under `prefix` (see `keys` for a lazy iterator)."""
        return builtins.list(self.keys(prefix, page_size))


def _expiry(expires_s: int) -> int:
    if not 1 <= expires_s <= MAX_PRESIGN_S:
        raise ValueError(f"presigned URL lifetime {expires_s}s is outside 1..{MAX_PRESIGN_S}")
    return int(expires_s)
