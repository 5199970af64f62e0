"""Creating projects: the commented config scaffold, and copies of the shipped examples."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from string import Template

from lambda_pipeline.adapters.local.config_store import CONFIG_FILE
from lambda_pipeline.errors import ConfigError, NotFound

__all__ = ["write_scaffold", "copy_example", "EXAMPLES"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def write_scaffold(target: Path, force: bool = False) -> Path:
    """Write a commented ``sagebuild.json`` named after the folder. Returns its path."""
    config = _config_path(target, force)
    name = re.sub(r"[^a-z0-9-]+", "-", target.name.lower()).strip("-")[:40].strip("-") or "my-model"
    if len(name) < 2:
        name = f"{name}-model"
    text = Template((Path(__file__).parent / "scaffold" / "sagebuild.json.tmpl").read_text())
    config.write_text(text.substitute(pipeline=name))
    return config


def copy_example(name: str, target: Path, force: bool = False) -> Path:
    """Copy ``examples/<name>`` into ``target`` and prepare its data. Returns the config path."""
    source = EXAMPLES / name
    if not (source / CONFIG_FILE).exists():
        choices = ", ".join(sorted(p.name for p in EXAMPLES.iterdir() if (p / CONFIG_FILE).exists()))
        raise NotFound(f"no example {name!r}; examples: {choices}")
    config = _config_path(target, force)
    shutil.copytree(source, target, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__", "data", ".sagebuild"))
    if (target / "prepare_data.py").exists():
        subprocess.run([sys.executable, str(target / "prepare_data.py"), "--out", str(target / "data")],
                       check=True, stdout=subprocess.DEVNULL)
    return config


def _config_path(target: Path, force: bool) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    config = target / CONFIG_FILE
    if config.exists() and not force:
        raise ConfigError(f"{config} already exists; use --force to overwrite it")
    return config
