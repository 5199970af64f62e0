"""Code and data from the project folder: code is packed as SageMaker's sourcedir.tar.gz."""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ...errors import ConfigError
from .artifacts import LocalArtifactStore
from .tarballs import pack_dir, tree_digest

__all__ = ["ProjectSourceStore"]


class ProjectSourceStore:
    """SourceStore port on the project folder. Same code, same key: packed once."""

    def __init__(self, project_dir: str, artifacts: LocalArtifactStore) -> None:
        self._dir = Path(project_dir).resolve()
        self._artifacts = artifacts

    def package_code(self, source_dir: str) -> str:
        src = (self._dir / source_dir).resolve()
        if not src.is_dir():
            raise ConfigError(f"'training.source_dir' {source_dir!r} is not a folder in {self._dir}")
        key = f"code/{tree_digest(str(src))}/sourcedir.tar.gz"
        if not self._artifacts.exists(key):
            with tempfile.TemporaryDirectory() as tmp:
                tarball = str(Path(tmp) / "sourcedir.tar.gz")
                pack_dir(str(src), tarball)
                self._artifacts.put_file(key, tarball)
        return self._artifacts.uri(key)

    def package_image_source(self, source_dir: str) -> str:
        raise ConfigError("the local platform builds no images ('image.build' must be false locally)")

    def data_ref(self, location: str) -> dict[str, Any]:
        """Which data a build used: the folder and a digest of its contents."""
        return {"uri": self.channel_uri(location), "digest": tree_digest(str((self._dir / location).resolve()))}

    def channel_uri(self, location: str) -> str:
        path = (self._dir / location).resolve()
        if not path.is_dir():
            raise ConfigError(f"data folder {location!r} does not exist in {self._dir}")
        return path.as_uri()
