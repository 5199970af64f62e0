"""Resolve an utterance to an intent with the locale's interaction model, as a device would.

Matching tolerates what Alexa's NLU tolerates in practice: case, punctuation, hyphens, spacing
(Japanese ignores spaces), numbers as digits or words, and optional slots (the model has
samples with and without them). Built-in intents get the phrases Alexa gives them. Anything
else resolves to AMAZON.FallbackIntent.
"""
from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Resolver", "Resolution", "MODEL_DIR", "load_model", "parse_number"]

MODEL_DIR = Path(__file__).resolve().parents[1] / "interaction_model" / "interactionModels" / "custom"

BUILTIN_PHRASES: dict[str, dict[str, list[str]]] = {
    "en": {"AMAZON.HelpIntent": ["help", "help me", "what can i say", "what can i do"],
           "AMAZON.StopIntent": ["stop", "quit", "exit", "shut up", "off"],
           "AMAZON.CancelIntent": ["cancel", "never mind", "forget it"],
           "AMAZON.YesIntent": ["yes", "yeah", "yep", "sure", "yes please", "ok", "okay", "do it"],
           "AMAZON.NoIntent": ["no", "nope", "no thanks", "don't"],
           "AMAZON.NavigateHomeIntent": ["go home", "home"]},
    "fr": {"AMAZON.HelpIntent": ["aide", "aide moi", "à l'aide", "qu'est ce que je peux dire"],
           "AMAZON.StopIntent": ["stop", "arrête", "arrêter", "tais toi", "quitte", "quitter"],
           "AMAZON.CancelIntent": ["annule", "annuler", "laisse tomber"],
           "AMAZON.YesIntent": ["oui", "ouais", "d'accord", "bien sûr", "oui vas y"],
           "AMAZON.NoIntent": ["non", "non merci", "surtout pas"],
           "AMAZON.NavigateHomeIntent": ["accueil", "retour à l'accueil"]},
    "ja": {"AMAZON.HelpIntent": ["ヘルプ", "助けて", "使い方を教えて"],
           "AMAZON.StopIntent": ["ストップ", "止めて", "終了", "やめて"],
           "AMAZON.CancelIntent": ["キャンセル", "取り消し"],
           "AMAZON.YesIntent": ["はい", "うん", "お願いします", "そうです", "はいお願いします"],
           "AMAZON.NoIntent": ["いいえ", "いや", "違います", "やめておく"],
           "AMAZON.NavigateHomeIntent": ["ホーム", "ホームに戻って"]},
}

_EN_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
            "ninety": 90}
_FR_UNITS = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
             "douze", "treize", "quatorze", "quinze", "seize", "dix sept", "dix huit", "dix neuf"]
_FR_TENS = {"vingt": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60}
_KANJI = {"〇": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}


def parse_number(text: str, lang: str) -> int | None:
    """Digits, or a number in words (en/fr up to 99, ja kanji up to 999)."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    if lang == "ja":
        total, current = 0, 0
        for ch in text:
            if ch in _KANJI:
                current = _KANJI[ch]
            elif ch in "十百":
                total += (current or 1) * (10 if ch == "十" else 100)
                current = 0
            else:
                return None
        return total + current if text else None
    units, tens = (_EN_UNITS, _EN_TENS) if lang == "en" else (_FR_UNITS, _FR_TENS)
    words = text.replace("-", " ").split()
    if " ".join(words) in units:
        return units.index(" ".join(words))
    if words and words[0] in tens:
        rest = " ".join(w for w in words[1:] if w != "et")
        if not rest:
            return tens[words[0]]
        if rest in units[1:10]:
            return tens[words[0]] + units.index(rest)
    return None


def load_model(locale: str) -> dict[str, Any]:
    path = MODEL_DIR / f"{locale}.json"
    if not path.exists():
        raise FileNotFoundError(f"no interaction model for {locale}: have "
                                + ", ".join(sorted(p.stem for p in MODEL_DIR.glob("*.json"))))
    return json.loads(path.read_text(encoding="utf-8"))["interactionModel"]["languageModel"]


def _normalize(text: str, lang: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    text = re.sub(r"[-‐–—]", " ", text)
    text = re.sub(r"[.,!?;:¿¡「」、。？！…\"]", " ", text)
    text = " ".join(text.split())
    if lang == "ja":
        text = text.replace(" ", "")
    if lang == "en":
        text = re.sub(r"^(please )|( please)$", "", text)
    return text


@dataclass
class Resolution:
    """What an utterance resolved to."""

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    sample: str | None = None


class Resolver:
    """Matches utterances against one locale's interaction model."""

    def __init__(self, locale: str, model: dict[str, Any] | None = None) -> None:
        self.locale = locale
        self.lang = locale.split("-")[0]
        self.model = model or load_model(locale)
        slot_types = {t["name"]: t for t in self.model.get("types", [])}
        self._patterns: list[tuple[int, re.Pattern[str], str, str, dict[str, str]]] = []
        for intent in self.model["intents"]:
            types = {s["name"]: s["type"] for s in intent.get("slots", [])}
            samples = list(intent.get("samples", [])) + BUILTIN_PHRASES.get(self.lang, {}).get(intent["name"], [])
            for sample in samples:
                regex, literal = self._compile(sample, types, slot_types)
                self._patterns.append((literal, re.compile(f"^{regex}$"), intent["name"], sample, types))
        self._patterns.sort(key=lambda p: -p[0])
        self._values = {name: self._value_map(t) for name, t in slot_types.items()}

    def resolve(self, utterance: str) -> Resolution:
        text = _normalize(utterance, self.lang)
        for _, pattern, intent, sample, types in self._patterns:
            match = pattern.match(text)
            if not match:
                continue
            slots: dict[str, Any] = {}
            ok = True
            for name, raw in match.groupdict().items():
                if types.get(name) == "AMAZON.NUMBER":
                    number = parse_number(raw, self.lang)
                    if number is None:
                        ok = False
                        break
                    slots[name] = str(number)
                else:
                    canonical = self._values.get(types.get(name, ""), {}).get(raw)
                    slots[name] = {"value": raw, "id": canonical} if canonical else raw
            if ok:
                return Resolution(intent, slots, sample)
        return Resolution("AMAZON.FallbackIntent")

    def _compile(self, sample: str, types: dict[str, str], slot_types: dict[str, Any]) -> tuple[str, int]:
        parts = re.split(r"(\{[A-Za-z0-9_]+\})", sample)
        regex, literal = "", 0
        for part in parts:
            slot = re.fullmatch(r"\{([A-Za-z0-9_]+)\}", part)
            if slot:
                name = slot.group(1)
                if types.get(name) == "AMAZON.NUMBER":
                    inner = r"[0-9]+|[a-zéèêà〇一二三四五六七八九十百]+(?: [a-zéèêà]+)*"
                else:
                    names = sorted(self._value_map(slot_types.get(types.get(name, ""), {})), key=len, reverse=True)
                    inner = "|".join(re.escape(n) for n in names) or ".+?"
                regex += f"(?P<{name}>{inner})"
            else:
                norm = _normalize(part, self.lang) if part.strip() else ""
                if self.lang != "ja" and part.startswith(" ") and regex:
                    regex += " "
                regex += re.escape(norm)
                literal += len(norm)
                if self.lang != "ja" and part.endswith(" ") and norm:
                    regex += " "
        return regex, literal

    def _value_map(self, slot_type: dict[str, Any]) -> dict[str, str]:
        """Spoken value or synonym (normalized) -> the value's id."""
        out = {}
        for value in slot_type.get("values", []):
            name = value["name"]
            for word in [name["value"], *name.get("synonyms", [])]:
                out[_normalize(word, self.lang)] = value.get("id") or name["value"]
        return out
