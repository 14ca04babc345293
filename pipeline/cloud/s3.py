"""The S3 bucket (private, encrypted, TLS only, versioned) and content-addressed uploads.

Versioning keeps every model artifact a training job wrote even if a later object replaces it; old
versions expire after ``NONCURRENT_DAYS`` so they do not pile up. Teardown deletes every version.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import ClientError

from pipeline.cloud.clients import error_code
from pipeline.cloud.errors import CloudError
from pipeline.cloud.names import Names
from pipeline.cloud.progress import Progress

_SHA256_META = "sha256"
NONCURRENT_DAYS = 30


def tls_only_policy(names: Names) -> dict[str, Any]:
    """Deny any request to the bucket that does not use TLS (``aws:SecureTransport`` false)."""
    bucket_arn = f"arn:{names.partition}:s3:::{names.bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DenyInsecureTransport",
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:*",
                "Resource": [bucket_arn, f"{bucket_arn}/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ],
    }


def lifecycle_rules() -> dict[str, Any]:
    """Expire replaced object versions and abandoned multipart uploads."""
    return {
        "Rules": [
            {
                "ID": "expire-old-versions",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "NoncurrentVersionExpiration": {"NoncurrentDays": NONCURRENT_DAYS},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            }
        ]
    }


def ensure_bucket(s3: Any, names: Names, progress: Progress) -> None:
    """Create the bucket if needed and keep a bucket deploy created private, encrypted, TLS-only and
    versioned. A bucket the user named (not tagged as ours) is used as it is."""
    if _bucket_reachable(s3, names):
        progress.detail(f"bucket {names.bucket} exists")
    else:
        _create_bucket(s3, names, progress)
    if is_ours(s3, names):
        _ensure_protections(s3, names, progress)


def _bucket_reachable(s3: Any, names: Names) -> bool:
    try:
        s3.head_bucket(Bucket=names.bucket)
        return True
    except Exception as exc:
        code = error_code(exc)
        if code in ("403", "AccessDenied"):
            raise CloudError(
                f"bucket {names.bucket} exists but this account cannot use it; set project.bucket to "
                "a bucket you own"
            ) from exc
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    return False


def _create_bucket(s3: Any, names: Names, progress: Progress) -> None:
    params: dict[str, Any] = {"Bucket": names.bucket}
    if names.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
        params["CreateBucketConfiguration"] = {"LocationConstraint": names.region}
    s3.create_bucket(**params)
    # Tagged at once: the tag is how a later run (and teardown) tells deploy's bucket from one the
    # user made. If tagging fails, the new, empty bucket is removed again, else the next run would
    # take it for the user's and leave it without its protections.
    try:
        s3.put_bucket_tagging(Bucket=names.bucket, Tagging={"TagSet": names.tag_list()})
    except Exception:
        s3.delete_bucket(Bucket=names.bucket)
        raise
    progress.detail(f"created bucket {names.bucket}")


PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
ENCRYPTION = {"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]}


def _ensure_protections(s3: Any, names: Names, progress: Progress) -> None:
    # Each setting is checked on its own, so a run stopped half-way through them is completed by the
    # next one instead of leaving the bucket without the rest.
    if not _tagged(s3, names):
        s3.put_bucket_tagging(Bucket=names.bucket, Tagging={"TagSet": names.tag_list()})
    block = _read(lambda: s3.get_public_access_block(Bucket=names.bucket)["PublicAccessBlockConfiguration"])
    if block != PUBLIC_ACCESS_BLOCK:
        s3.put_public_access_block(Bucket=names.bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
        progress.detail(f"bucket {names.bucket}: public access blocked")
    encryption = _read(
        lambda: s3.get_bucket_encryption(Bucket=names.bucket)["ServerSideEncryptionConfiguration"]
    )
    if not encryption or not encryption.get("Rules"):
        s3.put_bucket_encryption(Bucket=names.bucket, ServerSideEncryptionConfiguration=ENCRYPTION)
        progress.detail(f"bucket {names.bucket}: encrypted at rest (SSE-S3)")
    wanted = tls_only_policy(names)
    if _bucket_policy(s3, names.bucket) != wanted:
        s3.put_bucket_policy(Bucket=names.bucket, Policy=json.dumps(wanted))
        progress.detail(f"bucket {names.bucket}: TLS-only policy (aws:SecureTransport)")
    if s3.get_bucket_versioning(Bucket=names.bucket).get("Status") != "Enabled":
        s3.put_bucket_versioning(Bucket=names.bucket, VersioningConfiguration={"Status": "Enabled"})
        progress.detail(f"bucket {names.bucket}: versioning on")
    rules = _read(lambda: s3.get_bucket_lifecycle_configuration(Bucket=names.bucket)["Rules"])
    if not rules or not any(r.get("ID") == "expire-old-versions" for r in rules):
        s3.put_bucket_lifecycle_configuration(Bucket=names.bucket, LifecycleConfiguration=lifecycle_rules())
        progress.detail(f"bucket {names.bucket}: old versions expire after {NONCURRENT_DAYS} days")


# What S3 answers for a bucket setting that was never made (each setting has its own code).
_NOT_SET = (
    "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchLifecycleConfiguration",
)


def _read(get: Any) -> Any:
    try:
        return get()
    except Exception as exc:
        if error_code(exc) in _NOT_SET:
            return None
        raise


def _bucket_policy(s3: Any, bucket: str) -> dict[str, Any] | None:
    try:
        return json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
    except Exception as exc:
        if error_code(exc) == "NoSuchBucketPolicy":
            return None
        raise


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def upload_if_changed(s3: Any, bucket: str, key: str, path: Path, progress: Progress) -> bool:
    """Upload ``path`` to ``key`` unless the object already has the same SHA-256; True if uploaded."""
    sha = file_sha256(path)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        if head.get("Metadata", {}).get(_SHA256_META) == sha:
            progress.detail(f"s3://{bucket}/{key} is up to date")
            return False
    except Exception as exc:
        if error_code(exc) not in ("404", "NoSuchKey", "NotFound"):
            raise
    try:
        s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {_SHA256_META: sha}})
    except S3UploadFailedError as exc:
        # boto3's transfer manager re-raises the AWS error as a type of its own, with the ClientError
        # as context; raise that, so the operation, code and bucket reach the message.
        if isinstance(exc.__context__, ClientError):
            raise exc.__context__ from None
        raise CloudError(str(exc)) from exc
    progress.detail(f"uploaded {path.name} to s3://{bucket}/{key}")
    return True


def object_exists(s3: Any, uri: str) -> bool:
    bucket, key = split_uri(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def split_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key)."""
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise CloudError(f"{uri!r} is not an s3://bucket/key URI")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def bucket_exists(s3: Any, bucket: str) -> bool:
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except Exception as exc:
        if error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise


def is_ours(s3: Any, names: Names) -> bool:
    """True if the bucket carries this project's tag (deploy created it)."""
    return _tagged(s3, names)


def _tagged(s3: Any, names: Names) -> bool:
    try:
        tags = s3.get_bucket_tagging(Bucket=names.bucket)["TagSet"]
    except Exception as exc:
        if error_code(exc) in ("NoSuchTagSet", "NoSuchBucket", "404"):
            return False
        raise
    return {"Key": "project", "Value": names.prefix} in tags


def has_objects(s3: Any, bucket: str, prefix: str) -> bool:
    return s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=1).get("KeyCount", 0) > 0


def delete_prefix(s3: Any, bucket: str, prefix: str) -> int:
    """Delete every object (and version) under ``prefix``; returns how many were deleted."""
    deleted = 0
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        objects = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
        ]
        for i in range(0, len(objects), 1000):
            answer = s3.delete_objects(
                Bucket=bucket, Delete={"Objects": objects[i : i + 1000], "Quiet": True}
            )
            # DeleteObjects answers 200 even when keys were refused; in Quiet mode the refusals are all
            # it returns, so they must be read, or the bucket only fails later as "not empty".
            errors = answer.get("Errors", [])
            if errors:
                first = errors[0]
                raise CloudError(
                    f"S3 refused to delete {len(errors)} object(s) in {bucket}, e.g. {first.get('Key')}: "
                    f"{first.get('Code')}: {first.get('Message')}"
                )
            deleted += len(objects[i : i + 1000])
    return deleted


def delete_bucket(s3: Any, names: Names) -> str:
    """Empty our prefix; delete the bucket too if deploy created it. Returns what was done."""
    if not bucket_exists(s3, names.bucket):
        return "absent"
    if is_ours(s3, names):
        delete_prefix(s3, names.bucket, "")
        s3.delete_bucket(Bucket=names.bucket)
        return "deleted"
    count = delete_prefix(s3, names.bucket, names.s3_prefix + "/")
    return f"kept (not created by deploy); deleted {count} objects under {names.s3_prefix}/"
