"""A fixed set of pipelines held in memory: one pipeline seen through the ``Pipelines`` port (the
skill bound to a single Builds port, as before the registry), and tests and benchmarks."""
from __future__ import annotations

import builtins

from .errors import UnknownPipeline
from .model import PipelineInfo
from .ports import Builds

__all__ = ["FixedPipelines", "unknown"]


def unknown(name: str, known: builtins.list[str]) -> UnknownPipeline:
    """The error for a name no pipeline has, listing those that exist."""
    listed = ", ".join(known) if known else "none is running"
    return UnknownPipeline(f"no pipeline is named {name!r} (known: {listed})")


class FixedPipelines:
    """The ``Pipelines`` port over builds given up front: ``{info: builds}``."""

    def __init__(self, pipelines: dict[PipelineInfo, Builds]) -> None:
        self._infos = {info.name: info for info in pipelines}
        self._builds = {info.name: builds for info, builds in pipelines.items()}

    def names(self) -> builtins.list[str]:
        return sorted(self._infos)

    def info(self, name: str) -> PipelineInfo:
        try:
            return self._infos[name]
        except KeyError:
            raise unknown(name, self.names()) from None

    def builds(self, name: str) -> Builds:
        try:
            return self._builds[name]
        except KeyError:
            raise unknown(name, self.names()) from None

    def add(self, info: PipelineInfo, builds: Builds) -> None:
        """Register one more pipeline (a directory that grows while a conversation goes on)."""
        self._infos[info.name] = info
        self._builds[info.name] = builds
