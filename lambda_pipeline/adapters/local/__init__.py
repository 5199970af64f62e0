"""Local adapters: a folder for artifacts, SQLite for the ledger, subprocesses for SageMaker.

Imports are lazy so a process that needs one adapter does not load them all.
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["LocalArtifactStore", "FileConfigStore", "SqliteLedger", "ConfiguredNotifier",
           "LocalTrainingPlatform", "LocalHostingPlatform"]

_WHERE = {"LocalArtifactStore": "artifacts", "FileConfigStore": "config_store", "SqliteLedger": "ledger",
          "ConfiguredNotifier": "notifier", "LocalTrainingPlatform": "training", "LocalHostingPlatform": "hosting"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
