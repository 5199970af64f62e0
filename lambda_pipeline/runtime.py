"""The ports of this process, built once and shared by every handler call.

The local engine installs local adapters with :func:`install`; a Lambda entry point installs
AWS adapters at cold start. Handlers call :func:`ports` and never ask where they run.
"""
from __future__ import annotations

from .errors import SageBuildError
from .ports import Ports

__all__ = ["install", "ports", "uninstall"]

_ports: Ports | None = None


def install(bundle: Ports) -> None:
    global _ports
    _ports = bundle


def uninstall() -> None:
    global _ports
    _ports = None


def ports() -> Ports:
    if _ports is None:
        raise SageBuildError("no ports are installed in this process: the engine or the Lambda "
                             "entry point must call lambda_pipeline.runtime.install() first")
    return _ports
