"""Resolve an utterance to an intent with the locale's interaction model, the way a statistical NLU would.

Why not exact matching: Alexa generalises from the samples to paraphrases it has never seen, and
people do not speak in samples. ``sagebuild say`` and the tests stand in for a device, so this
resolver must generalise too, while staying deterministic, dependency-free and fast (a few ms).

How an utterance is scored (the same steps are applied to every sample of the model):

1. **Normalise**: Unicode NFKC (full-width digits and letters, half-width katakana), lower case,
   curly apostrophes, punctuation and hyphens to spaces. English contractions are expanded
   ("what's" -> "what is"); French élisions are split ("l'entraînement" -> "le entraînement").
   Features are taken accent-free ("réentraîne" = "reentraine"); Japanese ignores spaces, folds
   common kana spellings into their kanji ("おわった" -> "終わった") and drops polite endings
   ("してください" -> "して").
2. **Slots first**: numbers (digits anywhere; number words or kanji only where a number is
   expected: after "build"/"version"/"numéro", before 番 or after ビルド/バージョン) and
   pipeline names (the slot type's values and synonyms, longest first) are taken out and
   replaced by placeholders, as the samples' ``{BuildNumber}``/``{Version}`` and ``{Pipeline}`` are.
3. **Features**: content tokens (stop words removed, light suffix stems for English and French;
   for Japanese, runs of one script with particles dropped), the concept of each known synonym
   (train / retrain / kick off -> START; done / finished / ready -> DONE; ...), and character
   n-grams (3-grams for English and French, 1- to 3-grams for Japanese, which has no spaces).
   Each feature is weighted by its inverse intent frequency, ln(1 + N / df), over the N intents.
4. **Similarity**: cosine of the token vectors and of the character vectors, blended
   (``_TOKEN_WEIGHT``); an intent scores as its best sample. The best intent wins when it scores at
   least ``THRESHOLD``; otherwise, or when the out-of-domain samples of ``AMAZON.FallbackIntent``
   win, the answer is ``AMAZON.FallbackIntent``, as on a device.

Built-in intents get the phrases Alexa gives them. ``Resolver.explain`` returns the ranking
(what ``sagebuild say --explain`` prints, like Alexa's utterance profiler).
"""
from __future__ import annotations

import copy
import functools
import json
import logging
import math
import re
import unicodedata
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from typing import Any

import interaction_model

__all__ = ["Resolver", "Resolution", "Candidate", "MODEL_DIR", "model_dir", "load_model", "parse_number",
           "THRESHOLD", "explain_lines"]

logger = logging.getLogger(__name__)

FALLBACK = "AMAZON.FallbackIntent"
# Below this best score an utterance is out of the skill's domain. Calibrated on the models alone
# (tests/unit/test_nlu.py re-checks it): with AMAZON.FallbackIntent's samples left out, those
# out-of-domain samples score under 0.32 against the custom intents (en-US 13 of 16, fr-FR 15 of 15,
# ja-JP 15 of 15), while custom samples left out of their own intent score 0.74 / 0.55 / 0.51 or
# more (10th percentile) against the rest.
THRESHOLD = 0.32
_TOKEN_WEIGHT = {"en": 0.6, "fr": 0.6, "ja": 0.45}  # the rest is the character n-gram similarity
_UNKNOWN_DF = 0.5  # a feature no intent has counts as if half an intent had it: unknown words dilute
_NUM, _PIPE = "#", "@"  # placeholders for a number and a pipeline name


def model_dir() -> Traversable:
    """Where the interaction models are: package data of ``interaction_model`` (a wheel has them too)."""
    return interaction_model.models_dir()


MODEL_DIR = model_dir()


def load_model(locale: str) -> dict[str, Any]:
    """The ``languageModel`` of ``locale``'s interaction model; FileNotFoundError names the locales there are."""
    model: dict[str, Any] = json.loads(interaction_model.model_text(locale))["interactionModel"]["languageModel"]
    return model


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

# -- numbers ----------------------------------------------------------------------------------
_EN_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
             "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_EN_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
            "ninety": 90}
_FR_UNITS = ["zéro", "un", "deux", "trois", "quatre", "cinq", "six", "sept", "huit", "neuf", "dix", "onze",
             "douze", "treize", "quatorze", "quinze", "seize", "dix sept", "dix huit", "dix neuf"]
_FR_TENS = {"vingt": 20, "trente": 30, "quarante": 40, "cinquante": 50, "soixante": 60, "quatre vingt": 80,
            "quatre vingts": 80}
_KANJI = {"〇": 0, "零": 0, "一": 1, "二": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9}
_KANJI_UNITS = {"十": 10, "百": 100, "千": 1000}


def parse_number(text: str, lang: str) -> int | None:
    """Digits, or a number in words: en up to 999, fr up to 99, ja kanji up to 9999. None if it is not one.

    >>> parse_number("forty two", "en"), parse_number("soixante-dix-sept", "fr"), parse_number("十二", "ja")
    (42, 77, 12)
    """
    text = unicodedata.normalize("NFKC", text).strip().lower()
    if text.isdigit():
        return int(text)
    if not text:
        return None
    if lang == "ja":
        total, current = 0, None
        for ch in text:
            if ch in _KANJI:
                if current is not None:
                    return None
                current = _KANJI[ch]
            elif ch in _KANJI_UNITS:
                total += (1 if current is None else current) * _KANJI_UNITS[ch]
                current = None
            else:
                return None
        return total + (current or 0)
    words = [w for w in text.replace("-", " ").split() if w not in ("and", "et")]
    if lang == "en":
        return _en_number(words)
    return _fr_number(words)


def _en_number(words: list[str]) -> int | None:
    if "hundred" in words:
        i = words.index("hundred")
        head = _en_number(words[:i]) if i else 1
        rest = _en_number(words[i + 1:]) if words[i + 1:] else 0
        return None if head is None or rest is None or not 0 < head < 10 or rest >= 100 else head * 100 + rest
    phrase = " ".join(words)
    if phrase in _EN_UNITS:
        return _EN_UNITS.index(phrase)
    if words and words[0] in _EN_TENS:
        if len(words) == 1:
            return _EN_TENS[words[0]]
        if len(words) == 2 and words[1] in _EN_UNITS[1:10]:
            return _EN_TENS[words[0]] + _EN_UNITS.index(words[1])
    return None


def _fr_number(words: list[str]) -> int | None:
    phrase = " ".join(words)
    if phrase in _FR_UNITS:
        return _FR_UNITS.index(phrase)
    for tens in sorted(_FR_TENS, key=len, reverse=True):
        if phrase == tens:
            return _FR_TENS[tens]
        if phrase.startswith(tens + " "):
            rest = phrase[len(tens) + 1:]
            if rest in _FR_UNITS[1:20] and (tens.startswith("soixante") or tens.startswith("quatre") or
                                            rest in _FR_UNITS[1:10]):
                return _FR_TENS[tens] + _FR_UNITS.index(rest)
            return None
    return None


# -- per-locale language knowledge -------------------------------------------------------------
_STOP = {
    "en": set("a an the my our your me i we us you it its this that these those please can could would will to of "
              "for on in at with about just hey so and or some be".split()),
    "fr": set("le la les des du de d l mon ma mes ton ta tes votre vos notre nos ce cet cette ces je j tu il "
              "elle on nous vous me moi te toi se y a au aux et ou que plait stp svp peux pouvez peut "
              "si est-ce alors".split()),
    "ja": {"は", "が", "を", "に", "の", "で", "も", "と", "か", "よ", "ね", "な", "へ", "って", "ってば", "です", "ですか",
           "ね", "けど", "だから", "から"},
}
_CONTEXT = {"en": {"build", "builds", "number", "version", "v", "run"},
            "fr": {"build", "builds", "numero", "version", "n°"}}
# The concept a synonym belongs to: the words of the model's own samples and of the issue's list
# (train / retrain / build / run / kick off; done / finished / complete / ready; live / deployed /
# in production / serving; fail / break / crash). Stems for en/fr, substrings for ja.
_CONCEPTS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "DONE": ("done", "finish", "complet", "ready", "succeed", "success", "pass", "through"),
        "FAIL": ("fail", "break", "broke", "crash", "error", "wrong"),
        "START": ("start", "kick", "launch", "trigger", "begin", "retrain", "rebuild"),
        "STOP": ("stop", "cancel", "abort", "kill", "halt", "shut", "end", "call off"),
        "RETRY": ("retry", "rerun", "resum", "pick up", "another try", "another go"),
        "LIVE": ("live", "deploy", "production", "prod", "serv", "endpoint"),
        "LIST": ("list", "history", "recent", "many"),
        "BACK": ("back", "rollback", "revert", "undo", "restor", "previous", "old", "redeploy"),
        "STATUS": ("status", "state", "going", "doing", "update", "far along", "still"),
        "DETAIL": ("detail", "explain", "describe", "why", "reason", "happen", "accuracy"),
    },
    "fr": {
        "DONE": ("termine", "fini", "pret", "reussi", "passe", "marche"),
        "FAIL": ("echou", "echec", "plant", "casse", "crash", "erreur", "probleme"),
        "START": ("lance", "lancer", "lancez", "demarr", "declench", "relanc", "reentrain", "entrain", "construi",
                  "refai", "nouveau"),
        "STOP": ("arret", "annul", "stopp", "interromp", "coupe", "kill", "fin"),
        "RETRY": ("reessai", "repren", "recommenc", "retent", "retry", "tentative"),
        "LIVE": ("ligne", "production", "prod", "deploye", "actif", "sert", "servi", "endpoint"),
        "LIST": ("liste", "historique", "recent", "derniers", "enumer", "combien"),
        "BACK": ("revien", "reven", "retour", "arriere", "rollback", "restaur", "retabli", "remet", "precedent",
                 "ancien", "avant", "retourn", "repass", "redeploi"),
        "STATUS": ("etat", "statut", "avance", "encore", "toujours"),
        "DETAIL": ("pourquoi", "detail", "expliqu", "cause", "precision", "message"),
    },
    "ja": {
        "DONE": ("終わ", "完了", "成功", "通っ", "でき", "完成"),
        "FAIL": ("失敗", "落ち", "エラー", "壊", "原因", "理由", "いけなかった"),
        "START": ("開始", "始め", "実行", "起動", "スタート", "再学習", "回し", "かけ"),
        "STOP": ("止め", "停止", "中止", "中断", "キャンセル", "ストップ", "やめ", "キル", "終了"),
        "RETRY": ("やり直", "やりなお", "再実行", "リトライ", "再開", "再試行"),
        "LIVE": ("本番", "公開", "デプロイ", "稼働", "ライブ", "提供", "プロダクション", "動い"),
        "LIST": ("一覧", "履歴", "最近", "直近", "過去", "リスト", "何回", "何件", "これまで"),
        "BACK": ("戻", "ロールバック", "元に", "切り", "復元", "差し戻", "取り消"),
        "STATUS": ("状況", "状態", "進捗", "進み具合", "どうなって", "ステータス"),
        "DETAIL": ("詳細", "詳しく", "説明", "なぜ", "なんで", "何で", "どうして"),
    },
}
_EN_IRREGULAR = {"ran": "run", "running": "run", "went": "go", "broke": "break", "broken": "break",
                 "built": "build", "building": "build", "did": "do", "does": "do", "done": "done", "has": "have",
                 "had": "have", "was": "is", "were": "are", "gone": "go"}
_EN_CONTRACTIONS = [(r"\bwhat's\b", "what is"), (r"\bhow's\b", "how is"), (r"\bthat's\b", "that is"),
                    (r"\bit's\b", "it is"), (r"\bwhere's\b", "where is"), (r"\bwho's\b", "who is"),
                    (r"\blet's\b", "let us"), (r"\bcan't\b", "can not"), (r"\bwon't\b", "will not"),
                    (r"n't\b", " not"), (r"'re\b", " are"), (r"'ll\b", " will"), (r"'ve\b", " have"),
                    (r"'d\b", " would"), (r"\bi'm\b", "i am"), (r"'s\b", "")]
_FR_ELISION = re.compile(r"\b(l|d|qu|j|m|t|s|n|c|jusqu|lorsqu|puisqu)'")
# Japanese: kana spellings folded into the kanji the samples use, then polite endings dropped.
_JA_FOLD = [("おわ", "終わ"), ("とめ", "止め"), ("とま", "止ま"), ("いま", "今"), ("なに", "何"), ("出来", "でき"),
            ("下さい", "ください"), ("おしえ", "教え"), ("ぜんかい", "前回"), ("さいきん", "最近"), ("もど", "戻"),
            ("ひとつ", "一つ"), ("一個", "一つ"), ("しっぱい", "失敗"), ("せいこう", "成功"), ("ほんばん", "本番"),
            ("がくしゅう", "学習"), ("じっこう", "実行"), ("かいし", "開始"), ("ていし", "停止"), ("いちらん", "一覧"),
            ("りれき", "履歴"), ("しょうさい", "詳細"), ("始めて", "始めて"), ("はじめ", "始め"), ("みせ", "見せ")]
_JA_POLITE = re.compile(r"(ください|くださいませんか|もらえますか|もらえる|もらえない|くれる|くれますか|くれない|"
                        r"いただけますか|ちょうだい)$")
_JA_NUMBER = re.compile(r"[0-9]+|[〇零一二三四五六七八九十百千]+(?=番)|"
                        r"(?<=ビルド|ジョン)[〇零一二三四五六七八九十百千]+(?![\u4e00-\u9fff])")  # ジョン: バージョン
_SCRIPT_RUN = re.compile(r"[\u4e00-\u9fff々〆]+|[\u30a0-\u30ffー]+|[\u3040-\u309f]+|[a-z0-9]+|[#@]")


def _strip_accents(text: str) -> str:
    """Accent-free, one character for one (so a span found here is the same span in ``text``)."""
    return "".join(unicodedata.normalize("NFD", ch)[0] if ch.isalpha() and ord(ch) < 0x250 else ch for ch in text)


def _normalize(text: str, lang: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'").replace("‘", "'")
    if lang == "en":
        for pattern, repl in _EN_CONTRACTIONS:
            text = re.sub(pattern, repl, text)
    elif lang == "fr":
        text = _FR_ELISION.sub(lambda m: m.group(1) + "e ", text)  # l' -> le, qu' -> que, d' -> de
    text = re.sub(r"[-‐–—_/]", " ", text)
    text = re.sub(r"[.,!?;:¿¡「」『』、。？！…\"()\[\]*']", " ", text)
    text = " ".join(text.split())
    if lang == "ja":
        text = text.replace(" ", "")
        for kana, kanji in _JA_FOLD:
            text = text.replace(kana, kanji)
        text = _JA_POLITE.sub("", text)
    return text


def _en_stem(word: str) -> str:
    if word in _EN_IRREGULAR:
        return _EN_IRREGULAR[word]
    for suffix, min_len in (("ing", 6), ("ed", 5), ("es", 5), ("s", 4)):
        if word.endswith(suffix) and len(word) >= min_len and not word.endswith(("ss", "us", "is")):
            return word[: -len(suffix)]
    return word


def _fr_stem(word: str) -> str:
    for suffix in ("ements", "ement", "ées", "ée", "és", "es", "er", "ez", "é", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


# -- the resolver ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Candidate:
    """One intent's score for an utterance, and the sample that scored it."""

    intent: str
    score: float
    sample: str | None


@dataclass
class Resolution:
    """What an utterance resolved to: the intent, its slots, and how sure the resolver is."""

    intent: str
    slots: dict[str, Any] = field(default_factory=dict)
    sample: str | None = None
    score: float = 0.0
    ranking: list[Candidate] = field(default_factory=list)


@dataclass
class _Sample:
    intent: str
    text: str
    tokens: dict[str, float]
    chars: dict[str, float]


@dataclass
class _Extracted:
    text: str
    number: int | None = None
    pipeline: dict[str, str] | None = None


class _Compiled:
    """One locale's model turned into weighted feature vectors with inverted indexes (built once)."""

    def __init__(self, locale: str, model: dict[str, Any]) -> None:
        self.lang = locale.split("-")[0]
        self.intents: dict[str, dict[str, str]] = {}
        self.pipelines: list[tuple[str, str, str]] = []  # (normalised spoken form, value, id)
        for slot_type in model.get("types", []):
            for value in slot_type.get("values", []):
                name = value["name"]
                for spoken in [name["value"], *name.get("synonyms", [])]:
                    norm = _normalize(spoken, self.lang)
                    self.pipelines.append((_strip_accents(norm), spoken, value.get("id") or name["value"]))
        self.pipelines.sort(key=lambda p: -len(p[0]))
        self.vocabulary: set[str] = set()
        if self.lang == "ja":  # the words the samples use on their own, to split compounds with
            for intent in model["intents"]:
                for sample in list(intent.get("samples", [])) + BUILTIN_PHRASES["ja"].get(intent["name"], []):
                    flat = _strip_accents(_normalize(re.sub(r"\{\w+\}", " ", sample), "ja"))
                    self.vocabulary.update(r for r in _SCRIPT_RUN.findall(flat) if len(r) >= 2)
        raw: list[tuple[str, str, dict[str, int], dict[str, int]]] = []
        for intent in model["intents"]:
            self.intents[intent["name"]] = {s["name"]: s["type"] for s in intent.get("slots", [])}
            phrases = list(intent.get("samples", [])) + BUILTIN_PHRASES.get(self.lang, {}).get(intent["name"], [])
            for sample in phrases:
                text = re.sub(r"\{(BuildNumber|Version)\}", f" {_NUM} ", sample)
                text = re.sub(r"\{\w+\}", f" {_PIPE} ", text)
                tokens, chars = self.features(_normalize(text, self.lang))
                raw.append((intent["name"], sample, tokens, chars))
        n_intents = len({r[0] for r in raw})
        df_tok: dict[str, set[str]] = {}
        df_chr: dict[str, set[str]] = {}
        for intent, _, tokens, chars in raw:
            for f in tokens:
                df_tok.setdefault(f, set()).add(intent)
            for f in chars:
                df_chr.setdefault(f, set()).add(intent)
        self.idf_tok = {f: math.log(1 + n_intents / len(s)) for f, s in df_tok.items()}
        self.idf_chr = {f: math.log(1 + n_intents / len(s)) for f, s in df_chr.items()}
        self.unknown_idf = math.log(1 + n_intents / _UNKNOWN_DF)
        self.samples: list[_Sample] = []
        self.index_tok: dict[str, list[tuple[int, float]]] = {}
        self.index_chr: dict[str, list[tuple[int, float]]] = {}
        for i, (intent, sample, tokens, chars) in enumerate(raw):
            tv = _unit({f: c * self.idf_tok[f] for f, c in tokens.items()})
            cv = _unit({f: c * self.idf_chr[f] for f, c in chars.items()})
            self.samples.append(_Sample(intent, sample, tv, cv))
            for f, w in tv.items():
                self.index_tok.setdefault(f, []).append((i, w))
            for f, w in cv.items():
                self.index_chr.setdefault(f, []).append((i, w))

    # features ---------------------------------------------------------------------------------
    def features(self, text: str) -> tuple[dict[str, int], dict[str, int]]:
        """Token features (tokens, concepts, token pairs) and character n-grams of normalised text."""
        flat = _strip_accents(text)
        tokens: dict[str, int] = {}
        chars: dict[str, int] = {}
        concepts = _CONCEPTS.get(self.lang, {})
        if self.lang == "ja":
            runs = [w for r in _SCRIPT_RUN.findall(flat) if r not in _STOP["ja"] for w in self._segment(r)]
            content = "".join(runs)
            for run in runs:
                tokens[run] = tokens.get(run, 0) + 1
            for concept, spellings in concepts.items():
                if any(w in flat for w in spellings):
                    tokens["~" + concept] = 1
            for n in (1, 2, 3):
                for i in range(len(content) - n + 1):
                    gram = content[i:i + n]
                    chars[gram] = chars.get(gram, 0) + 1
            return tokens, chars
        stem = _en_stem if self.lang == "en" else _fr_stem
        words = [w for w in flat.split() if w not in _STOP[self.lang]] or flat.split()
        stems = [stem(w) for w in words]
        for s in stems:
            tokens[s] = tokens.get(s, 0) + 1
        for a, b in zip(stems, stems[1:]):
            tokens[f"{a}+{b}"] = tokens.get(f"{a}+{b}", 0) + 1
        joined = " " + " ".join(words) + " "
        for concept, roots in concepts.items():
            if any((" " + r) in joined for r in roots):
                tokens["~" + concept] = 1
        content = "_" + "_".join(words) + "_"
        for i in range(len(content) - 2):
            gram = content[i:i + 3]
            chars[gram] = chars.get(gram, 0) + 1
        return tokens, chars

    def _segment(self, run: str) -> list[str]:
        """Split a compound run ("ビルドストップ") into words the samples use alone, longest first."""
        vocab = self.vocabulary
        if run in vocab or len(run) < 4:
            return [run]
        words, i = [], 0
        while i < len(run):
            for j in range(len(run), i + 1, -1):
                if run[i:j] in vocab:
                    words.append(run[i:j])
                    i = j
                    break
            else:
                return [run]
        return words

    def extract(self, text: str) -> _Extracted:
        """Take numbers and pipeline names out of normalised text, leaving placeholders."""
        out = _Extracted(text)
        flat = _strip_accents(text)
        for spoken_norm, value, ident in self.pipelines:
            if self.lang == "ja":
                at = flat.find(spoken_norm)
                end = at + len(spoken_norm)
            else:
                m = re.search(rf"(?<![\w]){re.escape(spoken_norm)}(?![\w])", flat)
                at, end = (m.start(), m.end()) if m else (-1, -1)
            if at >= 0:
                out.pipeline = {"value": text[at:end], "id": ident}
                text = text[:at] + f" {_PIPE} " + text[end:]
                flat = flat[:at] + f" {_PIPE} " + flat[end:]
                break
        if self.lang == "ja":
            m = _JA_NUMBER.search(text)
            if m and (number := parse_number(m.group(0), "ja")) is not None:
                out.number = number
                text = text[:m.start()] + _NUM + text[m.end():]
            out.text = text.replace(" ", "")
            return out
        words = text.split()
        flat_words = _strip_accents(text).split()
        i = 0
        while i < len(words):
            word = flat_words[i]
            m = re.fullmatch(r"(?:v|#)?([0-9]+)(?:st|nd|rd|th|e|ème)?", word)
            if m:
                out.number = int(m.group(1))
                words[i:i + 1] = [_NUM]
                flat_words[i:i + 1] = [_NUM]
                break
            if i > 0 and flat_words[i - 1] in _CONTEXT[self.lang]:
                for j in range(min(len(words), i + 4), i, -1):
                    number = parse_number(" ".join(words[i:j]), self.lang)
                    if number is not None:
                        out.number = number
                        words[i:j] = [_NUM]
                        flat_words[i:j] = [_NUM]
                        break
                if out.number is not None:
                    break
            i += 1
        out.text = " ".join(words)
        return out

    # scoring ----------------------------------------------------------------------------------
    def rank(self, text: str) -> list[Candidate]:
        tokens, chars = self.features(text)
        tv = _unit({f: c * self.idf_tok.get(f, self.unknown_idf) for f, c in tokens.items()})
        cv = _unit({f: c * self.idf_chr.get(f, self.unknown_idf) for f, c in chars.items()})
        tok_dot = [0.0] * len(self.samples)
        chr_dot = [0.0] * len(self.samples)
        for f, w in tv.items():
            for i, sw in self.index_tok.get(f, ()):
                tok_dot[i] += w * sw
        for f, w in cv.items():
            for i, sw in self.index_chr.get(f, ()):
                chr_dot[i] += w * sw
        alpha = _TOKEN_WEIGHT[self.lang]
        best: dict[str, tuple[float, int]] = {}
        for i, sample in enumerate(self.samples):
            score = alpha * tok_dot[i] + (1 - alpha) * chr_dot[i]
            if score > best.get(sample.intent, (-1.0, 0))[0]:
                best[sample.intent] = (score, i)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
        return [Candidate(intent, round(score, 4), self.samples[i].text) for intent, (score, i) in ranked]


def _unit(vector: dict[str, float]) -> dict[str, float]:
    norm = math.sqrt(sum(w * w for w in vector.values()))
    return {f: w / norm for f, w in vector.items()} if norm else {}


@functools.lru_cache(maxsize=8)
def _compiled_for(locale: str) -> _Compiled:
    return _Compiled(locale, load_model(locale))


class Resolver:
    """Resolves utterances against one locale's interaction model.

    >>> Resolver("en-US").resolve("could you kick off a fresh training run").intent
    'StartBuildIntent'
    """

    def __init__(self, locale: str, model: dict[str, Any] | None = None, threshold: float = THRESHOLD,
                 pipelines: list[str] | None = None) -> None:
        """``pipelines``: the names registered now; they and their spoken forms (as the skill's
        dynamic entities give them to Alexa) replace the model's PIPELINE_NAME values."""
        self.locale = locale
        self.lang = locale.split("-")[0]
        self.model = model or load_model(locale)
        self.threshold = threshold
        self._compiled = _Compiled(locale, model) if model is not None else _compiled_for(locale)
        if pipelines:
            from .pipeline_names import spoken_names
            compiled = copy.copy(self._compiled)
            compiled.pipelines = sorted(
                ((_strip_accents(_normalize(form, self.lang)), form, entry.id)
                 for entry in spoken_names(pipelines, locale) for form in entry.forms),
                key=lambda p: -len(p[0]))
            self._compiled = compiled

    def pipeline_in(self, utterance: str) -> dict[str, str] | None:
        """The pipeline an utterance names (``{"value", "id"}``), or None: the answer to "which pipeline?"."""
        return self._compiled.extract(_normalize(utterance, self.lang)).pipeline

    def resolve(self, utterance: str) -> Resolution:
        """The intent (``AMAZON.FallbackIntent`` when nothing is close enough) and the slots it takes."""
        extracted = self._compiled.extract(_normalize(utterance, self.lang))
        if not extracted.text.strip():
            return Resolution(FALLBACK)
        ranking = self._compiled.rank(extracted.text)
        top = ranking[0] if ranking else Candidate(FALLBACK, 0.0, None)
        if top.intent == FALLBACK or top.score < self.threshold:
            return Resolution(FALLBACK, {}, top.sample if top.intent == FALLBACK else None, top.score, ranking)
        slots: dict[str, Any] = {}
        declared = self._compiled.intents.get(top.intent, {})
        if extracted.number is not None:
            for name in ("BuildNumber", "Version"):
                if declared.get(name) == "AMAZON.NUMBER":
                    slots[name] = str(extracted.number)
                    break
        if extracted.pipeline is not None and "Pipeline" in declared:
            slots["Pipeline"] = dict(extracted.pipeline)
        return Resolution(top.intent, slots, top.sample, top.score, ranking)

    def explain(self, utterance: str, top: int = 3) -> list[Candidate]:
        """The ``top`` best intents with their scores and best samples, best first."""
        return self.resolve(utterance).ranking[:top]


def explain_lines(resolver: Resolver, utterance: str, top: int = 3) -> list[str]:
    """What ``sagebuild say --explain`` prints: the top intents, their scores and closest samples."""
    resolution = resolver.resolve(utterance)
    lines = [f"resolved: {resolution.intent} (score {resolution.score:.3f}, threshold {resolver.threshold:.2f})"]
    for rank, candidate in enumerate(resolution.ranking[:top], 1):
        lines.append(f"  {rank}. {candidate.intent:<26} {candidate.score:.3f}  closest sample: {candidate.sample!r}")
    return lines
