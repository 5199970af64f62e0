"""Lint of the skill package: every locale's model against Alexa's rules and the code."""
import json
import re

import pytest

from skill.handlers import HANDLED_INTENTS
from skill.nlu import MODEL_DIR, Resolver
from tests.helpers import REPO

LOCALES = ("en-US", "fr-FR", "ja-JP")
CUSTOM = ("BuildStatusIntent", "StartBuildIntent", "StopBuildIntent", "BuildDetailsIntent", "LiveModelIntent",
          "ListBuildsIntent", "RollbackIntent")
BUILTINS = ("AMAZON.HelpIntent", "AMAZON.CancelIntent", "AMAZON.StopIntent", "AMAZON.NavigateHomeIntent",
            "AMAZON.FallbackIntent", "AMAZON.YesIntent", "AMAZON.NoIntent")
MANIFEST = json.loads((REPO / "interaction_model" / "skill.json").read_text(encoding="utf-8"))["manifest"]
# How an example phrase wraps an utterance, per locale: (prefix with the invocation, suffix).
EXAMPLE_FORMS = {"en-US": [r"^Alexa, ask sage build (?P<u>.+)$", r"^Alexa, open sage build$"],
                 "fr-FR": [r"^Alexa, demande à sage build (?P<u>.+)$", r"^Alexa, ouvre sage build$"],
                 "ja-JP": [r"^アレクサ、セージビルドで(?P<u>.+)$", r"^アレクサ、セージビルドを開いて$"]}


def model(locale):
    return json.loads((MODEL_DIR / f"{locale}.json").read_text(encoding="utf-8"))["interactionModel"]["languageModel"]


@pytest.fixture(params=LOCALES)
def locale(request):
    return request.param


def test_the_package_holds_every_locale_and_only_those():
    assert sorted(p.stem for p in MODEL_DIR.glob("*.json")) == sorted(LOCALES)
    assert sorted(MANIFEST["publishingInformation"]["locales"]) == sorted(LOCALES)


def test_intents_match_the_code_exactly(locale):
    names = {i["name"] for i in model(locale)["intents"]}
    assert names == set(HANDLED_INTENTS)
    assert set(BUILTINS) <= names


def test_invocation_name_follows_alexas_rules(locale):
    name = model(locale)["invocationName"]
    if locale == "ja-JP":
        assert re.fullmatch(r"[\u3040-\u30ff\u4e00-\u9fff]{2,50}", name), name
    else:
        assert re.fullmatch(r"[a-z]+( [a-z]+)+", name) and len(name) <= 50, name
        words = set(name.split())
        assert not words & {"alexa", "amazon", "echo", "skill", "app", "ask", "tell", "open", "launch", "start"}


def test_custom_intents_have_fifteen_natural_samples(locale):
    for intent in model(locale)["intents"]:
        if intent["name"] in CUSTOM:
            samples = intent["samples"]
            assert len(samples) >= 15, (intent["name"], len(samples))
            assert len(set(samples)) == len(samples)
            assert any("{" not in s for s in samples)  # slots stay optional
            for sample in samples:
                assert sample == sample.strip() and "  " not in sample
                assert not re.search(r"[0-9]", re.sub(r"\{\w+\}", "", sample)), sample  # numbers are slots


def test_every_slot_in_a_sample_is_declared_and_typed(locale):
    m = model(locale)
    types = {t["name"] for t in m.get("types", [])}
    for intent in m["intents"]:
        declared = {s["name"]: s["type"] for s in intent.get("slots", [])}
        used = {name for s in intent.get("samples", []) for name in re.findall(r"\{(\w+)\}", s)}
        assert used <= set(declared), (intent["name"], used - set(declared))
        for slot_type in declared.values():
            assert slot_type.startswith("AMAZON.") or slot_type in types
        for number_slot in ("BuildNumber", "Version"):
            if number_slot in declared:
                assert declared[number_slot] == "AMAZON.NUMBER"


def test_no_sample_is_shared_by_two_intents(locale):
    seen = {}
    for intent in model(locale)["intents"]:
        for sample in intent.get("samples", []):
            key = sample.lower()
            assert key not in seen, f"{sample!r} is in {seen.get(key)} and {intent['name']}"
            seen[key] = intent["name"]


def test_example_phrases_are_samples_of_the_model(locale):
    phrases = MANIFEST["publishingInformation"]["locales"][locale]["examplePhrases"]
    assert 1 <= len(phrases) <= 3
    samples = {s for i in model(locale)["intents"] for s in i.get("samples", [])}
    for phrase in phrases:
        for form in EXAMPLE_FORMS[locale]:
            match = re.match(form, phrase)
            if match:
                assert "u" not in match.groupdict() or match["u"] in samples, phrase
                break
        else:
            pytest.fail(f"{phrase!r} is not a well-formed example phrase for {locale}")


def test_every_sample_resolves_to_its_own_intent(locale):
    resolver = Resolver(locale)
    for intent in model(locale)["intents"]:
        for sample in intent.get("samples", []):
            filled = sample.replace("{BuildNumber}", "7").replace("{Version}", "3")
            for value in resolver.model.get("types", [])[0]["values"]:
                filled = filled.replace("{Pipeline}", value["name"]["value"])
            assert resolver.resolve(filled).intent == intent["name"], sample
