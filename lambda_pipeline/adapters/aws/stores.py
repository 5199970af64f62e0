"""ConfigStore on SSM Parameter Store; ArtifactStore and SourceStore on S3."""
from __future__ import annotations

import hashlib
from typing import Any

from ...config import load_config_text
from ...errors import ConfigError, NotFound
from .boto import client as _client, translate

__all__ = ["SsmConfigStore", "S3ArtifactStore", "S3SourceStore"]


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://"):
        raise ConfigError(f"expected an s3:// location, got {uri!r}")
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


class SsmConfigStore:
    """The pipeline config is the JSON value of one SSM parameter, validated on every load."""

    def __init__(self, parameter_name: str, boto3_client: Any = None, boto3_session: Any = None) -> None:
        self._ssm = _client("ssm", boto3_client, boto3_session)
        self.parameter_name = parameter_name

    def load(self) -> dict[str, Any]:
        return load_config_text(self.read_text(), source=f"SSM parameter {self.parameter_name}")

    def project_dir(self) -> str:
        return self.parameter_name

    def read_text(self) -> str:
        try:
            return self._ssm.get_parameter(Name=self.parameter_name)["Parameter"]["Value"]
        except Exception as exc:
            if "ParameterNotFound" in type(exc).__name__ or "ParameterNotFound" in str(exc):
                raise ConfigError(f"no SSM parameter {self.parameter_name}") from exc
            raise translate(exc, f"could not read {self.parameter_name}") from exc

    def write_text(self, text: str) -> None:
        """Overwrite the parameter; the next build reads the new value (SSM keeps the old versions)."""
        try:
            self._ssm.put_parameter(Name=self.parameter_name, Value=text, Type="String", Overwrite=True)
        except Exception as exc:
            raise translate(exc, f"could not write {self.parameter_name}") from exc


class S3ArtifactStore:
    """Artifacts under ``s3://bucket/prefix/``."""

    def __init__(self, bucket: str, prefix: str = "", boto3_client: Any = None, boto3_session: Any = None) -> None:
        self._s3 = _client("s3", boto3_client, boto3_session)
        self.bucket, self.prefix = bucket, prefix.strip("/")

    def _key(self, key_or_uri: str) -> str:
        if key_or_uri.startswith("s3://"):
            bucket, key = _split(key_or_uri)
            if bucket != self.bucket:
                raise ValueError(f"{key_or_uri} is not in the artifacts bucket {self.bucket}")
            return key
        return f"{self.prefix}/{key_or_uri}" if self.prefix else key_or_uri

    def put_file(self, key: str, path: str) -> str:
        try:
            self._s3.upload_file(path, self.bucket, self._key(key))
        except Exception as exc:
            raise translate(exc, f"could not upload {key}") from exc
        return self.uri(key)

    def get_file(self, key: str, path: str) -> None:
        try:
            self._s3.download_file(self.bucket, self._key(key), path)
        except Exception as exc:
            if "404" in str(exc) or "Not Found" in str(exc):
                raise NotFound(f"artifact {key!r} does not exist") from exc
            raise translate(exc, f"could not download {key}") from exc

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except Exception as exc:
            if "404" in str(exc) or "Not Found" in str(exc):
                return False
            raise translate(exc, f"could not look up {key}") from exc

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"


class S3SourceStore:
    """On AWS the code is uploaded (``code/<source_dir>/sourcedir.tar.gz``) before builds start;
    data channels are S3 prefixes, fingerprinted by their objects' keys and ETags."""

    def __init__(self, artifacts: S3ArtifactStore, boto3_client: Any = None, boto3_session: Any = None) -> None:
        self._artifacts = artifacts
        self._s3 = _client("s3", boto3_client, boto3_session)

    def package_code(self, source_dir: str) -> str:
        key = f"code/{source_dir.strip('/') or 'root'}/sourcedir.tar.gz"
        if not self._artifacts.exists(key):
            raise ConfigError(f"no code at {self._artifacts.uri(key)}: upload it first (sagebuild aws deploy does)")
        return self._artifacts.uri(key)

    def package_image_source(self, source_dir: str) -> str:
        """CodeBuild's S3 source location (``bucket/key``) of the zip `sagebuild aws deploy` uploaded."""
        key = f"code/{source_dir.strip('/') or 'root'}/image-source.zip"
        if not self._artifacts.exists(key):
            raise ConfigError(f"no image source at {self._artifacts.uri(key)}: upload it first (sagebuild aws deploy does)")
        return self._artifacts.uri(key)[len("s3://"):]

    def channel_uri(self, location: str) -> str:
        _split(location)
        return location

    def data_ref(self, location: str) -> dict[str, Any]:
        bucket, prefix = _split(location)
        digest = hashlib.sha256()
        count = 0
        try:
            for page in self._s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    digest.update(f"{item['Key']}\0{item['ETag']}\n".encode())
                    count += 1
        except Exception as exc:
            raise translate(exc, f"could not list {location}") from exc
        if count == 0:
            raise ConfigError(f"the data channel {location} holds no objects")
        return {"uri": location, "digest": digest.hexdigest()[:16], "objects": count}
