"""The ASK skill package (``skill.json``, ``interactionModels/custom/<locale>.json``) as package data.

It is also an ASK CLI skill package on disk (``ask deploy`` reads the folder), which is why it
keeps this top-level layout. ``grammar/<locale>.yaml`` is what the models are generated from
(``python interaction_model/expand.py``). Read it through :func:`models` and :func:`manifest`,
never by path, so an installed wheel works as well as a checkout.
"""
from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

__all__ = ["models_dir", "model_locales", "model_text", "manifest"]


def models_dir() -> Traversable:
    """``interactionModels/custom``: one ``<locale>.json`` per locale."""
    return files(__name__) / "interactionModels" / "custom"


def model_locales() -> list[str]:
    """The locales that have an interaction model, sorted."""
    return sorted(p.name[:-len(".json")] for p in models_dir().iterdir() if p.name.endswith(".json"))


def model_text(locale: str) -> str:
    """The interaction model of ``locale`` as committed; FileNotFoundError names the locales there are."""
    model = models_dir() / f"{locale}.json"
    if not model.is_file():
        raise FileNotFoundError(f"no interaction model for {locale}: have {', '.join(model_locales())}")
    return model.read_text(encoding="utf-8")


def manifest() -> dict[str, Any]:
    """``skill.json``: the skill manifest (publishing info, APIs, permissions, events)."""
    data: dict[str, Any] = json.loads((files(__name__) / "skill.json").read_text(encoding="utf-8"))
    return data
