import json

import pytest

from lambda_pipeline.model import Build, EndpointInfo
from skill import answers
from skill.speech import KEYS, SUPPORTED_LOCALES, Speech
from tests.helpers import REPO


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
def test_every_key_resolves_in_every_locale(locale):
    speech = Speech(locale)
    for key in KEYS:
        assert speech.raw(key), key
    lang_file = json.loads((REPO / "skill" / "locales" / f"{locale.split('-')[0]}.json").read_text(encoding="utf-8"))
    assert set(lang_file) == set(KEYS)  # no key falls back to English


def test_french_and_japanese_share_no_sentence_with_english():
    en, fr, ja = Speech("en-US"), Speech("fr-FR"), Speech("ja-JP")
    # identical by nature: placeholders, punctuation, and "minutes", which French spells the same
    allowed_same = {"SOURCE_OTHER", "LIST_END", "DECIMAL_POINT", "LIST_ITEM", "SOURCE_api", "DURATION_MINUTES",
                    "LIST_COMMA"}
    for key in KEYS:
        if key in allowed_same:
            continue
        assert fr.raw(key) != en.raw(key), key
        assert ja.raw(key) != en.raw(key), key


def test_region_falls_back_to_language_and_unknown_to_english():
    assert Speech("fr-CA").raw("GOODBYE") == Speech("fr-FR").raw("GOODBYE")
    assert Speech("de-DE").raw("GOODBYE") == Speech("en-US").raw("GOODBYE")


def test_dynamic_text_is_ssml_escaped_and_cut():
    speech = Speech("en-US")
    build = Build(id="b1", number=3, pipeline="p", status="FAILED", trigger_source="cli", reason="x",
                  created_at=0, ended_at=0, failed_step="Train",
                  failure_reason='KeyError: "<missing>" & more ' + "x" * 1000)
    text = answers.status_answer(build, None, speech, now=60 * 12)
    assert "&lt;missing&gt;" in text and "&amp;" in text and "<missing>" not in text
    assert len(text) < 500
    assert "12 minutes ago" in text and "while training" in text


def test_numbers_and_metrics_per_locale():
    assert Speech("en-US").metric("validation:accuracy", 0.9815) == " with validation accuracy 98.2 percent"
    assert Speech("fr-FR").metric("validation:accuracy", 0.9815) == ", avec validation accuracy de 98,2 pour cent"
    assert Speech("ja-JP").metric("validation:accuracy", 0.9815) == "、validation accuracyは98.2パーセント"
    assert Speech("en-US").metric("train:loss", 0.25) == " with train loss 0.25"


def test_times_are_spoken_naturally():
    en, fr, ja = Speech("en-US"), Speech("fr-FR"), Speech("ja-JP")
    assert en.ago(0, now=12 * 60) == "12 minutes ago"
    assert fr.ago(0, now=12 * 60) == "il y a 12 minutes"
    assert ja.ago(0, now=12 * 60) == "12分前に" and ja.ago(0, now=3) == "たった今"
    assert en.ago(0, now=3) == "just now" and en.ago(0, now=90) == "a minute ago"
    assert en.duration(1) == "one second" and en.duration(125) == "2 minutes"


def test_list_and_live_answers():
    speech = Speech("en-US")
    builds = [Build(id=f"b{i}", number=i, pipeline="wine", status=s, trigger_source="cli", reason="r",
                    created_at=0, started_at=0, ended_at=0) for i, s in ((2, "FAILED"), (1, "SUCCEEDED"))]
    assert answers.list_answer(builds, speech, now=600) == (
        "Your last 2 builds: build 2 failed 10 minutes ago; build 1 passed 10 minutes ago.")
    live = EndpointInfo(name="wine", status="InService", endpoint_config="c", model_version="v1", url=None,
                        updated_at=0, build_id="b1")
    builds[1].metrics = {"validation:accuracy": 0.9}
    assert answers.live_answer(live, builds[1], "wine-classifier", speech, now=600) == (
        "Version 1 of wine classifier is live. It was deployed 10 minutes ago by build 1"
        " with validation accuracy 90 percent.")
    assert answers.live_answer(None, None, "wine", speech) == speech.raw("NO_LIVE_MODEL")
