"""Expand the per-locale phrase grammars into the ASK interaction models.

Why: Alexa's NLU needs many samples per intent (short and long forms, questions, commands,
please/can-you forms), and hundreds of hand-kept lines per locale drift and collide. Each locale
is kept as a compact grammar, ``grammar/<locale>.yaml``; this script writes the committed
``interactionModels/custom/<locale>.json`` from it, and a test checks the two agree.

Grammar syntax inside a sample template:

* ``(a|b|c)`` one of the alternatives (an alternative may be empty: ``(は|)``);
* ``[a]`` optional, the same as ``(a|)``; ``[a|b]`` optional choice;
* ``<name>`` a macro from the grammar's ``macros`` (itself a template);
* ``{Slot}`` a slot reference, kept as it is.

Spaces are collapsed after expansion; duplicates within an intent are dropped (first kept);
a sample produced for two intents is an error, as Alexa's model build would report it.

Usage::

    python interaction_model/expand.py            # write every locale's model
    python interaction_model/expand.py --check    # exit 1 if a committed model differs
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["expand_template", "build_model", "render", "GrammarError", "GRAMMAR_DIR", "MODEL_DIR", "LOCALES"]

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
GRAMMAR_DIR = HERE / "grammar"
MODEL_DIR = HERE / "interactionModels" / "custom"
LOCALES = ("en-US", "fr-FR", "ja-JP")
_MAX_PER_TEMPLATE = 400  # a template that explodes past this is a mistake, not coverage


class GrammarError(ValueError):
    """The grammar is malformed, or expands to something Alexa's model build would reject."""


def expand_template(template: str, macros: dict[str, str] | None = None, _depth: int = 0) -> list[str]:
    """Every string ``template`` stands for, in order, spaces collapsed.

    >>> expand_template("is (my|the) build [really] done")
    ['is my build really done', 'is my build done', 'is the build really done', 'is the build done']
    """
    if _depth > 8:
        raise GrammarError(f"macros nest too deep in {template!r}")
    macros = macros or {}
    results, pos = _sequence(template, 0, macros, _depth, closing="")
    if pos != len(template):
        raise GrammarError(f"unbalanced {template[pos]!r} at {pos} in {template!r}")
    out: list[str] = []
    seen: set[str] = set()
    for text in results:
        text = " ".join(text.split())
        if text and text not in seen:
            seen.add(text)
            out.append(text)
    if len(out) > _MAX_PER_TEMPLATE:
        raise GrammarError(f"{template!r} expands to {len(out)} samples (more than {_MAX_PER_TEMPLATE})")
    return out


def _sequence(text: str, pos: int, macros: dict[str, str], depth: int, closing: str) -> tuple[list[str], int]:
    """Parse until ``|`` or the closing bracket; returns the expansions of this sequence."""
    results = [""]
    while pos < len(text):
        ch = text[pos]
        if ch in "|)]":
            if not closing or (ch != "|" and ch != closing):
                raise GrammarError(f"unexpected {ch!r} at {pos} in {text!r}")
            return results, pos
        if ch in "([":
            bracket = ")" if ch == "(" else "]"
            choices, pos = _alternatives(text, pos + 1, macros, depth, bracket)
            if ch == "[":
                choices = choices + [""]
            results = [r + c for r in results for c in choices]
            continue
        if ch == "<":
            end = text.find(">", pos)
            if end < 0:
                raise GrammarError(f"unclosed macro at {pos} in {text!r}")
            name = text[pos + 1:end]
            if name not in macros:
                raise GrammarError(f"unknown macro <{name}> in {text!r}")
            choices = expand_template(macros[name], macros, depth + 1)
            results = [r + c for r in results for c in choices]
            pos = end + 1
            continue
        if ch == "{":
            end = text.find("}", pos)
            if end < 0:
                raise GrammarError(f"unclosed slot at {pos} in {text!r}")
            literal = text[pos:end + 1]
            pos = end + 1
        else:
            literal = ch
            pos += 1
        results = [r + literal for r in results]
    if closing:
        raise GrammarError(f"missing {closing!r} in {text!r}")
    return results, pos


def _alternatives(text: str, pos: int, macros: dict[str, str], depth: int, end: str) -> tuple[list[str], int]:
    choices: list[str] = []
    while True:
        part, pos = _sequence(text, pos, macros, depth, closing=end)
        choices.extend(part)
        if pos >= len(text):
            raise GrammarError(f"missing {end!r} in {text!r}")
        if text[pos] == "|":
            pos += 1
            continue
        return choices, pos + 1


def load_grammar(locale: str) -> dict[str, Any]:
    path = GRAMMAR_DIR / f"{locale}.yaml"
    if not path.exists():
        raise GrammarError(f"no grammar for {locale}: expected {path}")
    grammar = yaml.safe_load(path.read_text(encoding="utf-8"))
    for key in ("invocationName", "intents", "builtins", "fallbackIntentSensitivity"):
        if key not in grammar:
            raise GrammarError(f"{path.name}: missing {key!r}")
    return grammar


def build_model(grammar: dict[str, Any]) -> dict[str, Any]:
    """The ASK interaction model (``{"interactionModel": {"languageModel": ...}}``) of a grammar."""
    macros = {k: str(v) for k, v in (grammar.get("macros") or {}).items()}
    owner: dict[str, str] = {}
    intents: list[dict[str, Any]] = []

    def claim(intent: str, samples: list[str]) -> list[str]:
        kept = []
        for sample in samples:
            key = sample.lower()
            if owner.get(key, intent) != intent:
                raise GrammarError(f"{sample!r} is a sample of both {owner[key]} and {intent}")
            if key not in owner:
                owner[key] = intent
                kept.append(sample)
        return kept

    dialog = grammar.get("dialog") or {}
    elicited: dict[str, list[str]] = {}  # intent -> the slots the skill may elicit
    slot_samples: dict[str, list[str]] = {}
    for slot, spec in dialog.items():
        slot_samples[slot] = [s for t in spec.get("samples") or [] for s in expand_template(str(t), macros)]
        for intent_name in spec.get("intents") or []:
            if slot not in ((grammar["intents"].get(intent_name) or {}).get("slots") or {}):
                raise GrammarError(f"dialog: {intent_name} has no slot {slot} to elicit")
            elicited.setdefault(intent_name, []).append(slot)
    for name, spec in grammar["intents"].items():
        samples: list[str] = []
        for template in spec.get("samples") or []:
            samples.extend(expand_template(str(template), macros))
        intent: dict[str, Any] = {"name": name}
        if spec.get("slots"):
            intent["slots"] = [{"name": slot, "type": kind,
                                **({"samples": slot_samples[slot]} if slot in elicited.get(name, []) else {})}
                               for slot, kind in spec["slots"].items()]
        intent["samples"] = claim(name, samples)
        intents.append(intent)
    for name, samples in grammar["builtins"].items():
        intents.append({"name": name, "samples": claim(name, [" ".join(str(s).split()) for s in samples or []])})
    types = [{"name": type_name,
              "values": [{"id": v["id"], "name": {"value": v["value"], "synonyms": list(v.get("synonyms") or [])}}
                         for v in values]}
             for type_name, values in (grammar.get("types") or {}).items()]
    language_model: dict[str, Any] = {
        "invocationName": grammar["invocationName"],
        "modelConfiguration": {"fallbackIntentSensitivity": {"level": grammar["fallbackIntentSensitivity"]}},
        "intents": intents,
        "types": types,
    }
    model: dict[str, Any] = {"languageModel": language_model}
    if elicited:
        slot_types = {n: dict(spec.get("slots") or {}) for n, spec in grammar["intents"].items()}
        model["dialog"] = {"delegationStrategy": "SKILL_RESPONSE", "intents": [
            {"name": name, "confirmationRequired": False, "prompts": {},
             "slots": [{"name": slot, "type": slot_types[name][slot], "confirmationRequired": False,
                        "elicitationRequired": False, "prompts": {}} for slot in slots]}
            for name, slots in elicited.items()]}
    return {"interactionModel": model}


def render(locale: str) -> str:
    """The exact text of ``interactionModels/custom/<locale>.json`` for the grammar as it is now."""
    return json.dumps(build_model(load_grammar(locale)), ensure_ascii=False, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 if a model is out of date")
    parser.add_argument("locales", nargs="*", default=list(LOCALES))
    args = parser.parse_args(argv)
    stale = []
    for locale in args.locales:
        text = render(locale)
        path = MODEL_DIR / f"{locale}.json"
        current = path.read_text(encoding="utf-8") if path.exists() else ""
        if args.check:
            if current != text:
                stale.append(locale)
            continue
        if current != text:
            path.write_text(text, encoding="utf-8")
        model = json.loads(text)["interactionModel"]["languageModel"]
        counts = ", ".join(f"{i['name']} {len(i['samples'])}" for i in model["intents"] if i["samples"])
        print(f"{locale}: {counts}")
    if stale:
        print("out of date (run python interaction_model/expand.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
