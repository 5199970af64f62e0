"""Artifact store on a folder: the local stand-in for the S3 artifacts bucket."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ...errors import NotFound

__all__ = ["LocalArtifactStore"]


class LocalArtifactStore:
    """Keys are relative paths under ``root``; URIs are ``file://`` URLs."""

    def __init__(self, root: str) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if self.root not in path.parents:
            raise ValueError(f"artifact key {key!r} escapes the artifact store")
        return path

    def put_file(self, key: str, path: str) -> str:
        """Copy ``path`` to ``key`` atomically (write then rename); return its URI."""
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        shutil.copyfile(path, tmp)
        os.replace(tmp, dest)
        return self.uri(key)

    def get_file(self, key: str, path: str) -> None:
        src = self._path(self.key_of(key))
        if not src.exists():
            raise NotFound(f"artifact {key!r} does not exist")
        shutil.copyfile(src, path)

    def exists(self, key: str) -> bool:
        return self._path(self.key_of(key)).exists()

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def local_path(self, key_or_uri: str) -> str:
        """Filesystem path of a key or a ``file://`` URI of this store."""
        return str(self._path(self.key_of(key_or_uri)))

    def key_of(self, key_or_uri: str) -> str:
        if key_or_uri.startswith("file://"):
            return str(Path(key_or_uri[len("file://"):]).resolve().relative_to(self.root))
        return key_or_uri
