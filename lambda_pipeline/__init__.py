"""The SageBuild pipeline: the ASL definition, its step handlers, and the ports they use.

Imports are lazy: the skill's Lambda imports only what it uses (cold starts count).
"""
from __future__ import annotations

import importlib
from typing import Any

__all__ = ["render_definition", "load_config_text", "validate_config", "SageBuildError", "Build",
           "BuildStatus", "EndpointInfo", "LogChunk", "StepRecord"]

_WHERE = {"render_definition": "definition", "load_config_text": "config", "validate_config": "config",
          "SageBuildError": "errors", "Build": "model", "BuildStatus": "model", "EndpointInfo": "model",
          "LogChunk": "model", "StepRecord": "model"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
