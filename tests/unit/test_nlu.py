"""`say`'s resolver: the NLU evaluation sets, the threshold's calibration, slots, explain.

The evaluation sets (tests/nlu/<locale>.json, ASK's NLU evaluation file shape) were written before
the samples were, the way people ask; none of them is a sample of the model.
"""
import json
import re

import pytest

from skill.nlu import THRESHOLD, Resolver, explain_lines, load_model, parse_number
from tests.helpers import REPO

LOCALES = ("en-US", "fr-FR", "ja-JP")
FALLBACK = "AMAZON.FallbackIntent"
MIN_ACCURACY = 0.90


def evaluation(locale):
    return json.loads((REPO / "tests" / "nlu" / f"{locale}.json").read_text(encoding="utf-8"))["data"]


@pytest.fixture(params=LOCALES)
def locale(request):
    return request.param


def _plain(text):
    """Case, width and punctuation aside, the words as said."""
    import unicodedata
    text = unicodedata.normalize("NFKC", text).lower().replace("’", "'")
    return " ".join(re.sub(r"[.,!?;:、。？！]", " ", text).split())


def _sample_pattern(sample):
    """A sample as a pattern whose slots take any value (checked by ``_is_sample``)."""
    parts = re.split(r"(\{\w+\})", _plain(sample))
    regex = ""
    for n, part in enumerate(parts):
        slot = re.fullmatch(r"\{(\w+)\}", part)
        regex += f"(?P<{slot.group(1).lower()}_{n}>.+?)" if slot else re.escape(part)
    return re.compile(f"^{regex}$")


def _is_sample(utterance, patterns, lang, pipelines):
    """Whether ``utterance`` is one of the samples with real slot values filled in."""
    for pattern in patterns:
        match = pattern.match(_plain(utterance))
        if match and all(parse_number(v, lang) is not None if k.startswith(("buildnumber", "version"))
                         else _plain(v) in pipelines for k, v in match.groupdict().items()):
            return True
    return False


def test_evaluation_files_have_asks_shape_and_enough_natural_utterances(locale):
    data = evaluation(locale)
    in_domain = [d for d in data if d["expected"][0]["intent"]["name"] != FALLBACK]
    out_of_domain = [d for d in data if d["expected"][0]["intent"]["name"] == FALLBACK]
    assert len(in_domain) >= 60 and len(out_of_domain) >= 8
    intents = {i["name"] for i in load_model(locale)["intents"]}
    for item in data:
        assert set(item) == {"inputs", "expected"} and isinstance(item["inputs"]["utterance"], str)
        (expected,) = item["expected"]
        assert expected["intent"]["name"] in intents
        for slot in expected["intent"]["slots"].values():
            assert set(slot) == {"value"}
    custom = {d["expected"][0]["intent"]["name"] for d in in_domain if not d["expected"][0]["intent"]["name"].startswith("AMAZON.")}
    assert len(custom) == 7  # every custom intent is evaluated
    assert len({d["inputs"]["utterance"] for d in data}) == len(data)


def test_no_evaluation_utterance_is_a_sample(locale):
    model = load_model(locale)
    patterns = [_sample_pattern(s) for i in model["intents"] for s in i.get("samples", [])]
    pipelines = {_plain(w) for t in model["types"] for v in t["values"] for w in [v["name"]["value"], *v["name"]["synonyms"]]}
    copied = [d["inputs"]["utterance"] for d in evaluation(locale)
              if _is_sample(d["inputs"]["utterance"], patterns, locale.split("-")[0], pipelines)]
    assert not copied, f"evaluation utterances that are samples (slots filled in): {copied}"


def _correct(resolution, expected):
    if resolution.intent != expected["name"]:
        return False
    for name, slot in expected["slots"].items():
        got = resolution.slots.get(name)
        got = got["value"] if isinstance(got, dict) else got
        if got is None or str(got).lower() != slot["value"].lower():
            return False
    return True


def test_evaluation_accuracy_per_locale(locale, capsys):
    resolver = Resolver(locale)
    data = evaluation(locale)
    misses, counts = [], {"in": [0, 0], "out": [0, 0]}
    for item in data:
        expected = item["expected"][0]["intent"]
        resolution = resolver.resolve(item["inputs"]["utterance"])
        ok = _correct(resolution, expected)
        kind = "out" if expected["name"] == FALLBACK else "in"
        counts[kind][0] += ok
        counts[kind][1] += 1
        if not ok:
            misses.append(f"{item['inputs']['utterance']!r}: expected {expected['name']} {expected['slots']}, "
                          f"got {resolution.intent} {resolution.slots} ({resolution.score:.2f})")
    accuracy = counts["in"][0] / counts["in"][1]
    fallback = counts["out"][0] / counts["out"][1]
    with capsys.disabled():
        print(f"\nNLU {locale}: {counts['in'][0]}/{counts['in'][1]} in-domain = {accuracy:.1%}; "
              f"out-of-domain to Fallback {counts['out'][0]}/{counts['out'][1]}")
        for miss in misses:
            print("  miss " + miss)
    assert accuracy >= MIN_ACCURACY, misses
    assert fallback >= MIN_ACCURACY, misses


def test_threshold_is_calibrated_on_the_models_own_out_of_domain_samples(locale):
    """With Fallback's samples left out, most of them stay under the threshold; custom samples stay far above."""
    model = json.loads(json.dumps(load_model(locale)))
    fallback = next(i for i in model["intents"] if i["name"] == FALLBACK)
    ood, fallback["samples"] = fallback["samples"], []
    resolver = Resolver(locale, model=model)
    under = [s for s in ood if resolver.resolve(s).score < THRESHOLD]
    assert len(under) >= 0.8 * len(ood), sorted(set(ood) - set(under))


@pytest.mark.parametrize("locale,utterance,intent,slots", [
    ("en-US", "is build forty-two done", "BuildStatusIntent", {"BuildNumber": "42"}),
    ("en-US", "stop build #17 please", "StopBuildIntent", {"BuildNumber": "17"}),
    ("en-US", "roll back to version seven", "RollbackIntent", {"Version": "7"}),
    ("en-US", "roll back to v3", "RollbackIntent", {"Version": "3"}),
    ("en-US", "start a new wine classifier build", "StartBuildIntent",
     {"Pipeline": {"value": "wine classifier", "id": "wine-classifier"}}),
    ("en-US", "start a new build", "StartBuildIntent", {}),  # "a" is not a number
    ("fr-FR", "où en est le build vingt et un", "BuildStatusIntent", {"BuildNumber": "21"}),
    ("fr-FR", "lance un build", "StartBuildIntent", {}),  # "un" is an article here
    ("fr-FR", "reviens à la version soixante-dix-sept", "RollbackIntent", {"Version": "77"}),
    ("fr-FR", "ARRÊTE LE BUILD DU MODÈLE DE VIN", "StopBuildIntent",
     {"Pipeline": {"value": "modèle de vin", "id": "wine-classifier"}}),
    ("fr-FR", "arrete le build", "StopBuildIntent", {}),  # without accents
    ("ja-JP", "十二番のビルドは成功した", "BuildStatusIntent", {"BuildNumber": "12"}),
    ("ja-JP", "ビルド３番を止めて", "StopBuildIntent", {"BuildNumber": "3"}),  # full-width digit
    ("ja-JP", "バージョン二に戻して", "RollbackIntent", {"Version": "2"}),
    ("ja-JP", "ビルド一覧", "ListBuildsIntent", {}),  # 一 of 一覧 is not a number
    ("ja-JP", "ワイン分類のビルドは終わった", "BuildStatusIntent",
     {"Pipeline": {"value": "ワイン分類", "id": "wine-classifier"}}),
    ("ja-JP", "ビルドをとめてください", "StopBuildIntent", {}),  # kana spelling, polite form
])
def test_slots_are_filled(locale, utterance, intent, slots):
    resolution = Resolver(locale).resolve(utterance)
    assert (resolution.intent, resolution.slots) == (intent, slots)


def test_far_utterances_fall_back_and_close_ones_do_not():
    resolver = Resolver("en-US")
    assert resolver.resolve("what is the capital of peru").intent == FALLBACK
    assert resolver.resolve("").intent == FALLBACK
    assert resolver.resolve("!!!").intent == FALLBACK
    close = resolver.resolve("could you please kick off a brand new build")
    assert close.intent == "StartBuildIntent" and close.score >= THRESHOLD


def test_explain_ranks_the_top_three_deterministically(locale):
    resolver = Resolver(locale)
    utterance = {"en-US": "why did the build break", "fr-FR": "pourquoi le build a planté",
                 "ja-JP": "ビルドはなぜ失敗したの"}[locale]
    first = resolver.explain(utterance)
    assert len(first) == 3 and first[0].intent == "BuildDetailsIntent"
    assert [c.score for c in first] == sorted((c.score for c in first), reverse=True)
    assert first[0].score > first[1].score
    assert resolver.explain(utterance) == first == Resolver(locale).explain(utterance)
    lines = explain_lines(resolver, utterance)
    assert lines[0].startswith("resolved: BuildDetailsIntent (score ")
    assert len(lines) == 4 and lines[1].lstrip().startswith("1. BuildDetailsIntent")


@pytest.mark.parametrize("text,lang,number", [
    ("7", "en", 7), ("twelve", "en", 12), ("forty two", "en", 42), ("one hundred and five", "en", 105),
    ("quarante-deux", "fr", 42), ("soixante et onze", "fr", 71), ("quatre-vingt-dix-neuf", "fr", 99),
    ("十二", "ja", 12), ("三百五", "ja", 305), ("千", "ja", 1000), ("１２", "ja", 12),
    ("build", "en", None), ("一覧", "ja", None), ("", "fr", None),
])
def test_parse_number(text, lang, number):
    assert parse_number(text, lang) == number


def test_the_readme_utterance_table_is_true():
    """Every phrase the README's table shows resolves to its row's intent, in its column's locale."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    table = text[text.index("| intent | en-US | fr-FR | ja-JP |"):]
    rows = [line for line in table.splitlines()[2:] if line.startswith("| `")]
    assert len(rows) == 9  # the eight custom intents and NotifyMeIntent
    resolvers = {locale: Resolver(locale) for locale in LOCALES}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        intent = cells[0].strip("`")
        for locale, cell in zip(LOCALES, cells[1:]):
            phrases = re.findall(r"“([^”]+)”", cell)
            assert len(phrases) >= 3, row
            for phrase in phrases:
                assert resolvers[locale].resolve(phrase).intent == intent, (locale, phrase)
