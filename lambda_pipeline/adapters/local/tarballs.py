"""Pack and unpack the tarballs the SageMaker contracts use (model.tar.gz, sourcedir.tar.gz)."""
from __future__ import annotations

import hashlib
import os
import tarfile
from pathlib import Path

__all__ = ["pack_dir", "unpack", "tree_digest"]

_SKIP = {"__pycache__", ".git", ".sagebuild", ".venv", "node_modules", ".ipynb_checkpoints"}


def pack_dir(src: str, dest: str, skip: set[str] = _SKIP) -> None:
    """Write ``src``'s contents (not the folder itself) to the gzip tarball ``dest``."""
    with tarfile.open(dest, "w:gz") as tar:
        for root, dirs, files in os.walk(src):
            dirs[:] = sorted(d for d in dirs if d not in skip)
            for name in sorted(files):
                full = os.path.join(root, name)
                tar.add(full, arcname=os.path.relpath(full, src), recursive=False)


def unpack(tarball: str, dest: str) -> None:
    """Extract with the 'data' filter: no absolute paths, links or devices escaping ``dest``."""
    Path(dest).mkdir(parents=True, exist_ok=True)
    with tarfile.open(tarball, "r:*") as tar:
        tar.extractall(dest, filter="data")


def tree_digest(src: str, skip: set[str] = _SKIP) -> str:
    """A short content hash of a folder: same code, same key, no re-upload."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if d not in skip)
        for name in sorted(files):
            full = os.path.join(root, name)
            digest.update(os.path.relpath(full, src).encode())
            digest.update(Path(full).read_bytes())
    return digest.hexdigest()[:16]
