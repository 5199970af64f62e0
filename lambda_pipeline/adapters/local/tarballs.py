"""Pack and unpack the tarballs the SageMaker contracts use (model.tar.gz, sourcedir.tar.gz)."""
from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path
from typing import Iterator

__all__ = ["pack_dir", "unpack", "tree_digest", "walk_files"]

_SKIP = {"__pycache__", ".git", ".sagebuild", ".venv", "node_modules", ".ipynb_checkpoints"}


def walk_files(src: str, skip: set[str] = _SKIP) -> Iterator[tuple[str, str]]:
    """``(path, path relative to src)`` of every file under ``src``, sorted, skipping ``skip`` folders:
    what every package of a code folder holds (tarball, digest, CodeBuild's zip)."""
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(files):
            full = os.path.join(root, name)
            yield full, os.path.relpath(full, src)


def pack_dir(src: str, dest: str, skip: set[str] = _SKIP) -> None:
    """Write ``src``'s contents (not the folder itself) to the gzip tarball ``dest``."""
    with tarfile.open(dest, "w:gz") as tar:
        for full, relative in walk_files(src, skip):
            tar.add(full, arcname=relative, recursive=False)


def unpack(tarball: str, dest: str) -> None:
    """Extract with the 'data' filter: no absolute paths, links or devices escaping ``dest``."""
    Path(dest).mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:*") as tar:
        tar.extractall(dest, filter="data")


def tree_digest(src: str, skip: set[str] = _SKIP) -> str:
    """A short content hash of a folder: same code, same key, no re-upload."""
    digest = hashlib.sha256()
    for full, relative in walk_files(src, skip):
        digest.update(relative.encode())
        digest.update(Path(full).read_bytes())
    return digest.hexdigest()[:16]
