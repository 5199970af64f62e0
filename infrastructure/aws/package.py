"""The Lambda code zip: our two runtime packages plus the pure-Python libraries the skill needs.

Libraries come from this environment's installed distributions (the pinned versions), not a
fresh download, so the zip matches what the tests ran. Lambda's Python runtime brings boto3,
botocore, s3transfer and jmespath itself.
"""
from __future__ import annotations

import hashlib
import importlib.metadata as md
import re
import zipfile
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from lambda_pipeline.errors import ConfigError

__all__ = ["build_lambda_zip", "RUNTIME_PACKAGES", "LAMBDA_PROVIDED"]

RUNTIME_PACKAGES = ("lambda_pipeline", "skill")
# What the skill imports at run time (ask-sdk-core and what it needs), by distribution name.
LAMBDA_LIBRARIES = ("ask-sdk-core",)
LAMBDA_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath"}
_SKIP = re.compile(r"(__pycache__|\.pyc$|\.dist-info/RECORD$)")
_FIXED_TIME = (2020, 1, 1, 0, 0, 0)  # same inputs, same zip, same hash


def _closure(names: tuple[str, ...]) -> list[md.Distribution]:
    """The distributions and their non-optional requirements, minus what Lambda provides."""
    from packaging.requirements import Requirement

    seen: dict[str, md.Distribution] = {}
    todo = list(names)
    while todo:
        requirement = Requirement(todo.pop())
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue  # e.g. `typing; python_version < "3.5"`, or an optional extra
        name = requirement.name.lower().replace("_", "-")
        if name in seen or name in LAMBDA_PROVIDED:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError as exc:
            raise ConfigError(f"{name} is not installed here; run `make install` first") from exc
        seen[name] = dist
        todo += list(dist.requires or [])
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def _add(archive: zipfile.ZipFile, source: Path | Traversable, arcname: str) -> None:
    info = zipfile.ZipInfo(arcname, _FIXED_TIME)
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, source.read_bytes())


def _package_files(folder: Traversable, prefix: str) -> dict[str, Traversable]:
    """Every file of an installed (or checked-out) package, by its name in the zip."""
    out: dict[str, Traversable] = {}
    for item in folder.iterdir():
        name = f"{prefix}/{item.name}"
        if _SKIP.search(name):
            continue
        if item.is_dir():
            out.update(_package_files(item, name))
        elif item.is_file():
            out[name] = item
    return out


def build_lambda_zip(out: Path) -> tuple[Path, str, list[str]]:
    """Write the zip; returns its path, a content hash (for the S3 key) and the libraries in it.

    Raises:
        ConfigError: a library ships compiled code with no pure-Python twin (it might not run on
            Lambda as built here); optional compiled speed-ups are left out.
    """
    entries: dict[str, Path | Traversable] = {}
    for package in RUNTIME_PACKAGES:
        entries.update(_package_files(files(package), package))
    libraries = []
    for dist in _closure(LAMBDA_LIBRARIES):
        libraries.append(f"{dist.metadata['Name']}=={dist.version}")
        for file in dist.files or []:
            arcname = str(file)
            if arcname.startswith("..") or _SKIP.search(arcname):
                continue
            if arcname.endswith((".so", ".pyd", ".dylib")):
                module = arcname.split(".", 1)[0] + ".py"  # mypyc speed-ups beside their pure-Python source
                if any(str(f) == module for f in dist.files or []):
                    continue
                raise ConfigError(f"{dist.metadata['Name']} ships compiled code ({arcname}); the Lambda zip holds "
                                  "pure-Python libraries only")
            entries[arcname] = Path(str(file.locate()))
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        for arcname in sorted(entries):
            _add(archive, entries[arcname], arcname)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    return out, digest, libraries
