"""Creating projects: the commented config scaffold, and copies of the shipped examples."""
from __future__ import annotations

import re
import subprocess
import sys
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from string import Template

from lambda_pipeline.adapters.local.config_store import CONFIG_FILE
from lambda_pipeline.errors import ConfigError, NotFound

__all__ = ["write_scaffold", "copy_example", "example_names", "copy_tree"]

_SKIP_NAMES = {"__pycache__", "data", ".sagebuild"}  # made by running the example, not part of it


def _examples() -> Traversable:
    return files("examples")


def example_names() -> list[str]:
    """The shipped examples: the folders of the ``examples`` package that hold a ``sagebuild.json``."""
    return sorted(p.name for p in _examples().iterdir() if p.is_dir() and (p / CONFIG_FILE).is_file())


def write_scaffold(target: Path, force: bool = False) -> Path:
    """Write a commented ``sagebuild.json`` named after the folder. Returns its path."""
    config = _config_path(target, force)
    name = re.sub(r"[^a-z0-9-]+", "-", target.name.lower()).strip("-")[:40].strip("-") or "my-model"
    if len(name) < 2:
        name = f"{name}-model"
    text = Template((files("sagebuild") / "scaffold" / "sagebuild.json.tmpl").read_text(encoding="utf-8"))
    config.write_text(text.substitute(pipeline=name))
    return config


def copy_example(name: str, target: Path, force: bool = False) -> Path:
    """Copy ``examples/<name>`` into ``target`` and prepare its data. Returns the config path."""
    if name not in example_names():
        raise NotFound(f"no example {name!r}; examples: {', '.join(example_names())}")
    config = _config_path(target, force)
    copy_tree(_examples() / name, target)
    if (target / "prepare_data.py").exists():
        subprocess.run([sys.executable, str(target / "prepare_data.py"), "--out", str(target / "data")],
                       check=True, stdout=subprocess.DEVNULL)
    return config


def copy_tree(source: Traversable, target: Path) -> None:
    """Copy package data (a folder of a package, installed or in a checkout) into ``target``.

    ``importlib.resources.as_file`` only takes folders from Python 3.12 on, so this walks them.
    Generated folders (``data``, ``__pycache__``, ``.sagebuild``) are left out.
    """
    target.mkdir(parents=True, exist_ok=True)
    for item in source.iterdir():
        if item.name in _SKIP_NAMES or item.name.endswith(".pyc"):
            continue
        if item.is_dir():
            copy_tree(item, target / item.name)
        else:
            (target / item.name).write_bytes(item.read_bytes())


def _config_path(target: Path, force: bool) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    config = target / CONFIG_FILE
    if config.exists() and not force:
        raise ConfigError(f"{config} already exists; use --force to overwrite it")
    return config
