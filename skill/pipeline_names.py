"""How pipeline names are spoken: ``wine-classifier`` is "wine classifier", ``fraud-prod`` also
"fraud production" and, when it is the only prod pipeline, just "prod"; in Japanese the katakana
(or kanji) of common words, "ワイン分類器", beside the romaji name.

The same forms feed the ``Dialog.UpdateDynamicEntities`` the skill sends at a session's start,
the local resolver behind ``sagebuild say``, and the matching of what was said to a pipeline.
"""
from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

__all__ = ["SpokenName", "spoken", "spoken_names", "norm", "match"]

# environment words -> what people say for them, per language
_ENVIRONMENTS = {
    "dev": {"en": ["dev", "development"], "fr": ["dev", "développement"], "ja": ["開発", "デブ"]},
    "prod": {"en": ["prod", "production"], "fr": ["prod", "production"], "ja": ["本番", "プロド"]},
    "production": {"en": ["prod", "production"], "fr": ["prod", "production"], "ja": ["本番"]},
    "staging": {"en": ["staging"], "fr": ["staging", "préproduction"], "ja": ["ステージング"]},
    "test": {"en": ["test"], "fr": ["test"], "ja": ["テスト"]},
}
# common words of model names, in katakana or kanji (ja-JP)
_JA_WORDS = {
    "wine": "ワイン", "classifier": "分類器", "classification": "分類", "fraud": "不正", "detection": "検知",
    "detector": "検知器", "model": "モデル", "churn": "チャーン", "price": "価格", "pricing": "価格",
    "forecast": "予測", "prediction": "予測", "predictor": "予測器", "sales": "売上", "demand": "需要",
    "sentiment": "感情", "image": "画像", "text": "テキスト", "spam": "スパム", "credit": "クレジット",
    "risk": "リスク", "customer": "顧客", "recommender": "レコメンド", "recommendation": "レコメンド",
    "iris": "アイリス", "house": "住宅", "housing": "住宅", "sagebuild": "セージビルド", "demo": "デモ",
    "dev": "開発", "prod": "本番", "production": "本番", "staging": "ステージング", "test": "テスト",
    "regression": "回帰", "anomaly": "異常", "xgboost": "エックスジーブースト", "sklearn": "サイキットラーン",
}
_PREFIXES = ("sagebuild",)  # stack names such as sagebuild-dev: "dev" is what people say


@dataclass(frozen=True)
class SpokenName:
    """One pipeline's spoken forms in one language: ``value`` first, then ``synonyms``."""

    id: str
    value: str
    synonyms: tuple[str, ...]

    @property
    def forms(self) -> tuple[str, ...]:
        return (self.value, *self.synonyms)


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[-_.\s]+", name.lower()) if w]


def spoken(name: str) -> str:
    """The name as said aloud: ``wine-classifier`` -> "wine classifier"."""
    return " ".join(_words(name)) or name


def norm(text: str) -> str:
    """Letters and digits only, lower case, no accents: how two spoken forms are compared."""
    text = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in text if ch.isalnum() and not unicodedata.combining(ch))


def _forms(name: str, lang: str, env_counts: Counter[str]) -> list[str]:
    words = _words(name)
    core = [w for w in words if w not in _PREFIXES] or words
    envs = [w for w in core if w in _ENVIRONMENTS]
    base = [w for w in core if w not in _ENVIRONMENTS]
    forms = [" ".join(words), " ".join(core)]
    for env in envs:
        # Japanese: romaji forms keep the English word; the kanji/katakana go in the compound below
        for said in _ENVIRONMENTS[env]["en" if lang == "ja" else lang] if lang in ("en", "ja", "fr") \
                else _ENVIRONMENTS[env]["en"]:
            if base:
                forms += [" ".join(base + [said]), " ".join([said] + base)]
            if env_counts[env] == 1 or not base:  # "prod" alone, when only one pipeline is prod
                forms.append(said)
        if lang == "ja" and (env_counts[env] == 1 or not base):
            forms += _ENVIRONMENTS[env]["ja"]
    if base and not envs and len(base) > 1:
        forms.append(" ".join(base))
    if lang == "ja":
        if all(w in _JA_WORDS for w in core):
            forms.insert(0, "".join(_JA_WORDS[w] for w in core))
            if base and envs:
                forms.append("".join(_JA_WORDS[w] for w in envs + base))
    seen: list[str] = []
    for form in forms:
        if form and form not in seen:
            seen.append(form)
    return seen


def spoken_names(names: list[str], locale: str) -> list[SpokenName]:
    """Every pipeline's spoken forms in ``locale``; a form two pipelines share is left out of both."""
    return list(_spoken_names(tuple(names), locale))


@functools.lru_cache(maxsize=64)  # the same few directories, asked about on every request
def _spoken_names(names: tuple[str, ...], locale: str) -> tuple[SpokenName, ...]:
    lang = locale.split("-")[0].lower()
    env_counts: Counter[str] = Counter()
    for name in names:
        core = [w for w in _words(name) if w not in _PREFIXES]
        env_counts.update({w for w in core if w in _ENVIRONMENTS})
    per_name = {name: _forms(name, lang, env_counts) for name in names if name}
    owners: Counter[str] = Counter(norm(f) for forms in per_name.values() for f in set(forms))
    out = []
    for name, forms in per_name.items():
        unique = [f for f in forms if owners[norm(f)] == 1] or forms[:1]
        out.append(SpokenName(id=name, value=unique[0], synonyms=tuple(unique[1:])))
    return tuple(out)


def match(said: str, names: list[str], locale: str) -> str | None:
    """The pipeline whose name or spoken form ``said`` is, or None."""
    wanted = norm(said)
    if not wanted:
        return None
    for name in names:
        if norm(name) == wanted:
            return name
    for entry in spoken_names(names, locale):
        if any(norm(form) == wanted for form in entry.forms):
            return entry.id
    return None
