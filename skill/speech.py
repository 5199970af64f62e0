"""Per-locale speech: resources merged ``lang`` then ``lang-REGION``, formatted and SSML-escaped.

Every spoken string comes from ``skill/locales/<lang>.json`` (optionally overridden by
``<lang>-<REGION>.json``). Keys are the names of the constants below; a test resolves every
key in every supported locale, so no English can leak into French or Japanese answers.
"""
from __future__ import annotations

import functools
import json
import re
import string
import time
from importlib.resources import files
from typing import Any

__all__ = ["Speech", "SUPPORTED_LOCALES", "KEYS", "ssml_escape"]

_DIR = files("skill") / "locales"  # package data: the same from a wheel, a checkout or the Lambda zip
SUPPORTED_LOCALES = ("en-US", "fr-FR", "ja-JP")
_DEFAULT_LANG = "en"
_MAX_DYNAMIC = 300  # a failure reason or a name is cut here: answers stay short


@functools.lru_cache(maxsize=None)
def _load(name: str) -> dict[str, str]:
    path = _DIR / f"{name}.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


KEYS = tuple(sorted(_load(_DEFAULT_LANG)))


def ssml_escape(text: str) -> str:
    """Make dynamic text safe inside ``<speak>`` (xml.sax.saxutils would import urllib.request)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


class Speech:
    """The strings of one locale, with the formatting helpers answers need."""

    def __init__(self, locale: str | None) -> None:
        locale = locale or "en-US"
        lang = locale.split("-")[0].lower()
        if not _load(lang):
            lang, locale = _DEFAULT_LANG, "en-US"
        self.locale = locale
        self.lang = lang
        self._strings = {**_load(lang), **_load(locale)}

    def raw(self, key: str) -> str:
        return self._strings[key]

    def say(self, key: str, **values: Any) -> str:
        """The string for ``key`` with ``values`` filled in (values are SSML-escaped, cut to length)."""
        template = self._strings[key]
        safe = {k: ssml_escape(_cut(str(v))) for k, v in values.items()}
        return string.Formatter().vformat(template, (), safe)

    def plain(self, key: str, **values: Any) -> str:
        """Like :meth:`say` but without escaping, for values that are already SSML-safe speech."""
        return string.Formatter().vformat(self._strings[key], (), values)

    # -- formatting -----------------------------------------------------------------------
    def ago(self, when: float | None, now: float | None = None) -> str:
        delta = max(0, int((now if now is not None else time.time()) - (when or 0)))
        if delta < 10:
            return self.raw("AGO_NOW")
        if delta < 60:
            return self.plain("AGO_SECONDS", n=delta)
        minutes = delta // 60
        if minutes < 60:
            return self.raw("AGO_MINUTE") if minutes == 1 else self.plain("AGO_MINUTES", n=minutes)
        hours = minutes // 60
        if hours < 24:
            return self.raw("AGO_HOUR") if hours == 1 else self.plain("AGO_HOURS", n=hours)
        days = hours // 24
        return self.raw("AGO_DAY") if days == 1 else self.plain("AGO_DAYS", n=days)

    def duration(self, seconds: float | None) -> str:
        total = int(round(seconds or 0))
        if total < 60:
            return self.raw("DURATION_SECOND") if total == 1 else self.plain("DURATION_SECONDS", n=total)
        minutes = total // 60
        if minutes < 60:
            return self.raw("DURATION_MINUTE") if minutes == 1 else self.plain("DURATION_MINUTES", n=minutes)
        return self.plain("DURATION_HOURS", n=minutes // 60, m=minutes % 60)

    @staticmethod
    def version(version: str | None) -> str:
        """``v12`` is spoken "12" (the templates say "version"); other names stay as they are."""
        text = str(version or "")
        return text[1:] if re.fullmatch(r"v\d+", text) else text

    def number(self, value: float) -> str:
        text = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
        return text.replace(".", self.raw("DECIMAL_POINT"))

    def metric(self, name: str, value: float) -> str:
        spoken_name = name.replace(":", " ").replace("_", " ").replace("-", " ")
        ratio = any(w in name.lower() for w in ("accuracy", "precision", "recall", "f1", "auc"))
        if ratio and 0 <= value <= 1:
            spoken = self.plain("PERCENT", value=self.number(round(value * 100, 1)))
        else:
            spoken = self.number(value)
        return self.say("METRIC", name=spoken_name, value=spoken)

    def ordinal(self, n: int) -> str:
        """``second`` / ``deuxième`` / ``2回目``: an attempt's ordinal in this locale."""
        key = f"ORDINAL_{n}"
        return self.raw(key) if key in self._strings else self.say("ORDINAL_N", n=n)

    def step(self, step: str | None) -> str:
        key = f"STEP_{step}" if step else "STEP_NONE"
        return self.raw(key) if key in self._strings else self.raw("STEP_NONE")

    def source(self, source: str) -> str:
        key = f"SOURCE_{source}"
        return self.raw(key) if key in self._strings else self.say("SOURCE_OTHER", source=source)


def _cut(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DYNAMIC else text[:_MAX_DYNAMIC - 1].rstrip() + "…"
