"""The ``Pipelines`` port over the per-user registry of running engines (``~/.sagebuild/pipelines.json``).

Every call re-reads the registry (a few hundred microseconds), so an engine started after the
skill or a conversation started is found, and one that died is gone. Each pipeline's builds are
its engine's API (:class:`HttpBuilds`, with the engine's token); who may steer it comes from its
own project's ``sagebuild.json`` (``skill.allowed_user_ids``), re-read when the file changes.
"""
from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any, Protocol

from ...config import load_config_text
from ...errors import ConfigError
from ...model import PipelineInfo
from ...pipelines import unknown
from .config_store import CONFIG_FILE
from .http_builds import HttpBuilds

__all__ = ["RegistryPipelines"]


class _Registry(Protocol):
    def entries(self) -> builtins.list[Any]: ...  # RegisteredPipeline: name, project, url, pid, token


class RegistryPipelines:
    """The pipelines running on this machine for this user.

    Args:
        registry: a ``PipelineRegistry`` (default: the user's, ``$SAGEBUILD_HOME``).
        timeout: seconds each API call may take (the skill has 8 s in all).

    Two projects with the same pipeline name are told apart by their folder: ``name (folder)``.
    """

    def __init__(self, registry: _Registry | None = None, timeout: float = 5.0) -> None:
        if registry is None:
            from infrastructure.local.registry import PipelineRegistry
            registry = PipelineRegistry()
        self._registry = registry
        self._timeout = timeout
        self._builds: dict[tuple[str, str], HttpBuilds] = {}
        self._configs: dict[str, tuple[float, PipelineInfo]] = {}

    def _entries(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        entries = self._registry.entries()
        counts: dict[str, int] = {}
        for entry in entries:
            counts[entry.name] = counts.get(entry.name, 0) + 1
        for entry in entries:
            name = entry.name if counts[entry.name] == 1 else f"{entry.name} ({Path(entry.project).name})"
            if name in found:  # same name, same folder name: the whole path tells them apart
                name = f"{entry.name} ({entry.project})"
            found[name] = entry
        return found

    def _entry(self, name: str) -> Any:
        entries = self._entries()
        try:
            return entries[name]
        except KeyError:
            raise unknown(name, sorted(entries)) from None

    def names(self) -> builtins.list[str]:
        return sorted(self._entries())

    def builds(self, name: str) -> HttpBuilds:
        entry = self._entry(name)
        key = (entry.url, entry.token)
        if key not in self._builds:
            self._builds[key] = HttpBuilds(entry.url, timeout=self._timeout, token=entry.token)
        return self._builds[key]

    def info(self, name: str) -> PipelineInfo:
        entry = self._entry(name)
        path = Path(entry.project) / CONFIG_FILE
        try:
            mtime = os.stat(path).st_mtime
        except OSError as exc:
            raise ConfigError(f"the {name} pipeline's {CONFIG_FILE} is gone from {entry.project}") from exc
        cached = self._configs.get(name)
        if cached is not None and cached[0] == mtime and cached[1].url == entry.url:
            return cached[1]
        skill = load_config_text(path.read_text(encoding="utf-8"), source=str(path))["skill"]
        info = PipelineInfo(name=name, allowed_user_ids=frozenset(skill["allowed_user_ids"]),
                            others_can_query=bool(skill["others_can_query"]), folder=entry.project, url=entry.url)
        self._configs[name] = (mtime, info)
        return info
