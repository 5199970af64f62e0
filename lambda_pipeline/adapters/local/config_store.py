"""Pipeline configuration from a JSON file (the local stand-in for the SSM parameter)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...config import load_config_text
from ...errors import ConfigError

__all__ = ["FileConfigStore", "CONFIG_FILE"]

CONFIG_FILE = "sagebuild.json"


class FileConfigStore:
    """Reads and validates ``sagebuild.json`` in the project folder on every load."""

    def __init__(self, project_dir: str, filename: str = CONFIG_FILE) -> None:
        self._dir = Path(project_dir).resolve()
        self.path = self._dir / filename

    def load(self) -> dict[str, Any]:
        """The validated config with defaults. Raises ConfigError naming the bad key."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"no {self.path.name} in {self._dir}: run `sagebuild init` there first") from None
        return load_config_text(text, source=str(self.path.name))

    def project_dir(self) -> str:
        return str(self._dir)

    def read_text(self) -> str:
        """The document as written (with its comments); ConfigError if there is none."""
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"no {self.path.name} in {self._dir}") from None

    def write_text(self, text: str) -> None:
        """Replace the document atomically (a reader never sees half of it)."""
        tmp = self.path.with_suffix(".json.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, self.path)
