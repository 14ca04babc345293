"""The S3 bucket (private, encrypted) and content-addressed uploads of the training data."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from pipeline.cloud.clients import error_code
from pipeline.cloud.errors import CloudError
from pipeline.cloud.names import Names
from pipeline.cloud.progress import Progress

_SHA256_META = "sha256"


def ensure_bucket(s3: Any, names: Names, progress: Progress) -> None:
    """Create the bucket if it does not exist: all public access blocked, SSE-S3, tagged."""
    try:
        s3.head_bucket(Bucket=names.bucket)
        progress.detail(f"bucket {names.bucket} exists")
        return
    except Exception as exc:
        code = error_code(exc)
        if code in ("403", "AccessDenied"):
            raise CloudError(
                f"bucket {names.bucket} exists but this account cannot use it; set project.bucket to "
                "a bucket you own"
            ) from exc
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise
    params: dict[str, Any] = {"Bucket": names.bucket}
    if names.region != "us-east-1":  # us-east-1 rejects an explicit LocationConstraint
        params["CreateBucketConfiguration"] = {"LocationConstraint": names.region}
    s3.create_bucket(**params)
    s3.put_public_access_block(
        Bucket=names.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    s3.put_bucket_encryption(
        Bucket=names.bucket,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    s3.put_bucket_tagging(Bucket=names.bucket, Tagging={"TagSet": names.tag_list()})
    progress.detail(f"created bucket {names.bucket} (private, encrypted)")


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
    s3.upload_file(str(path), bucket, key, ExtraArgs={"Metadata": {_SHA256_META: sha}})
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
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[i : i + 1000], "Quiet": True})
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
