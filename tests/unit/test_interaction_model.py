"""Lint of the skill package: every locale's model against Alexa's rules and the code."""
import importlib.util
import json
import re

import pytest

import interaction_model
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
    assert interaction_model.model_locales() == sorted(LOCALES)
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


def test_custom_intents_have_forty_natural_samples(locale):
    for intent in model(locale)["intents"]:
        if intent["name"] in CUSTOM:
            samples = intent["samples"]
            assert len(samples) >= 40, (intent["name"], len(samples))
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


# -- the grammar is the source; the committed JSON is its expansion --------------------------
def _expander():
    spec = importlib.util.spec_from_file_location("im_expand", REPO / "interaction_model" / "expand.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_models_are_the_expansion_of_the_grammars(locale):
    expected = _expander().render(locale)
    actual = (MODEL_DIR / f"{locale}.json").read_text(encoding="utf-8")
    assert actual == expected, f"run: python interaction_model/expand.py {locale}"


def test_the_expander_rejects_what_alexa_would():
    expand = _expander()
    assert expand.expand_template("(is|has) [my] build <d>", {"d": "(done|over)"}) == [
        "is my build done", "is my build over", "is build done", "is build over",
        "has my build done", "has my build over", "has build done", "has build over"]
    for bad in ("is (my build", "is my] build", "is <nope> done", "is {Slot done"):
        with pytest.raises(expand.GrammarError):
            expand.expand_template(bad, {})
    grammar = {"invocationName": "x y", "fallbackIntentSensitivity": "LOW", "builtins": {},
               "intents": {"A": {"samples": ["stop (it|now)"]}, "B": {"samples": ["stop it"]}}}
    with pytest.raises(expand.GrammarError, match="both A and B"):
        expand.build_model(grammar)


# -- lint, as Alexa's model build and certification would -----------------------------------
ALLOWED = {"en-US": r"[a-z' .]+", "fr-FR": r"[a-zàâäçéèêëîïôöùûüÿœæ' -]+",
           "ja-JP": r"[\u3040-\u309f\u30a0-\u30ff\u4e00-\u9fff々ー]+"}
WAKE_WORDS = {"en-US": ("alexa", "amazon", "echo", "computer"), "fr-FR": ("alexa", "amazon", "echo"),
              "ja-JP": ("アレクサ", "アマゾン", "エコー")}
LAUNCH_PREFIXES = {"en-US": ("ask ", "open ", "tell sage", "launch sage", "start sage", "use "),
                   "fr-FR": ("demande ", "ouvre ", "lance sage", "dis à "),
                   "ja-JP": ("を開いて", "を起動", "で")}


def _samples(locale):
    return [(i["name"], s) for i in model(locale)["intents"] for s in i.get("samples", [])]


def test_samples_use_only_the_characters_alexa_accepts(locale):
    for intent, sample in _samples(locale):
        text = re.sub(r"\{\w+\}", "", sample)
        assert re.fullmatch(ALLOWED[locale], text.replace(" ", "") if locale == "ja-JP" else text), (intent, sample)
        assert len(sample) <= 200


def test_no_invocation_name_wake_word_or_launch_phrase_in_samples(locale):
    invocation = model(locale)["invocationName"].lower()
    for intent, sample in _samples(locale):
        lowered = sample.lower()
        assert invocation not in lowered and invocation.replace(" ", "") not in lowered.replace(" ", ""), sample
        assert not any(w in lowered for w in WAKE_WORDS[locale]), sample
        if locale == "ja-JP":
            assert not lowered.startswith("で") and "を開いて" not in lowered, sample
        else:
            assert not lowered.startswith(LAUNCH_PREFIXES[locale]), sample


def test_slot_syntax(locale):
    m = model(locale)
    for intent in m["intents"]:
        declared = {s["name"] for s in intent.get("slots", [])}
        for sample in intent.get("samples", []):
            assert sample.count("{") == sample.count("}"), sample
            assert not re.search(r"\{[^}]*\{", sample), f"nested braces in {sample!r}"
            names = re.findall(r"\{([^}]*)\}", sample)
            for name in names:
                assert re.fullmatch(r"[A-Za-z][A-Za-z_]*", name), (sample, name)
                assert name in declared, (intent["name"], sample)
            assert len(names) == len(set(names)), f"a slot is used twice in {sample!r}"
            if locale != "ja-JP":  # space-delimited languages: a slot is a word of its own
                assert not re.search(r"\w\{|\}\w|\}\{", sample), sample


def test_numbers_are_spelled_as_alexa_requires(locale):
    for intent, sample in _samples(locale):
        text = re.sub(r"\{\w+\}", "", sample)
        assert not re.search(r"[0-9０-９]", text), sample
        if locale == "en-US":
            assert not re.search(r"(twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety)-", text), sample


def test_fallback_sensitivity_is_explicit_with_out_of_domain_samples(locale):
    m = model(locale)
    assert m["modelConfiguration"]["fallbackIntentSensitivity"]["level"] in ("LOW", "MEDIUM", "HIGH")
    fallback = next(i for i in m["intents"] if i["name"] == "AMAZON.FallbackIntent")
    assert len(fallback["samples"]) >= 10
    resolver = Resolver(locale)
    for sample in fallback["samples"]:
        assert resolver.resolve(sample).intent == "AMAZON.FallbackIntent", sample


def test_example_phrases_resolve_to_a_custom_intent(locale):
    resolver = Resolver(locale)
    owner = {s: name for name, s in _samples(locale)}
    for phrase in MANIFEST["publishingInformation"]["locales"][locale]["examplePhrases"]:
        for form in EXAMPLE_FORMS[locale]:
            match = re.match(form, phrase)
            if match and "u" in match.groupdict():
                assert owner[match["u"]] in CUSTOM, phrase
                assert resolver.resolve(match["u"]).intent == owner[match["u"]], phrase


def test_the_skill_declares_the_apl_interface():
    interfaces = MANIFEST["apis"]["custom"].get("interfaces", [])
    assert [i for i in interfaces if i.get("type") == "ALEXA_PRESENTATION_APL"], interfaces


def test_the_dialog_model_lets_the_skill_elicit_the_pipeline_of_an_action(locale):
    """The "Which pipeline?" answer: Dialog.ElicitSlot needs the intent and slot in a dialog model,
    slot samples that hold that slot alone, and no intent sample that is a bare slot."""
    m = json.loads((MODEL_DIR / f"{locale}.json").read_text(encoding="utf-8"))["interactionModel"]
    dialog = {i["name"]: i for i in m["dialog"]["intents"]}
    assert set(dialog) == {"StartBuildIntent", "StopBuildIntent", "RollbackIntent", "RetryBuildIntent"}  # the actions
    assert m["dialog"]["delegationStrategy"] == "SKILL_RESPONSE"
    intents = {i["name"]: i for i in m["languageModel"]["intents"]}
    for name, spec in dialog.items():
        [slot] = spec["slots"]
        assert slot["name"] == "Pipeline" and not slot["elicitationRequired"]
        [declared] = [s for s in intents[name]["slots"] if s["name"] == "Pipeline"]
        assert declared["type"] == slot["type"] == "PIPELINE_NAME"
        assert "{Pipeline}" in declared["samples"] and len(declared["samples"]) >= 5
        for sample in declared["samples"]:
            assert re.findall(r"\{(\w+)\}", sample) == ["Pipeline"], sample
            text = re.sub(r"\{\w+\}", "", sample)
            assert re.fullmatch(ALLOWED[locale], text.replace(" ", "") if locale == "ja-JP" else text) or not text
    for intent in intents.values():
        assert all(not re.fullmatch(r"\{\w+\}", s.strip()) for s in intent.get("samples", [])), intent["name"]
