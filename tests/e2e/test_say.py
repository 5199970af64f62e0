"""`sagebuild say`: an utterance resolved like a device would, the real handler, the answer printed."""
import json

import pytest

from tests.helpers import cli

pytestmark = pytest.mark.e2e


def say(project, *args):
    out = cli(project, "say", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.parametrize("utterance,locale,intent,fragment", [
    ("Is my build done?!", "en-US", "BuildStatusIntent", "Build 5 is still running"),
    ("did build one pass", "en-US", "BuildStatusIntent", "Build 1 passed"),
    ("WHY did build 2 fail", "en-US", "BuildDetailsIntent", "learning rate must be positive"),
    ("what's running in production", "en-US", "LiveModelIntent", "Version 1 of wine classifier is live"),
    ("Où en est le build 3 ?", "fr-FR", "BuildStatusIntent", "n'a pas passé le contrôle de validation"),
    ("quel modèle est en ligne", "fr-FR", "LiveModelIntent", "La version 1 de"),
    ("ビルドは終わった？", "ja-JP", "BuildStatusIntent", "ビルド5番は実行中です"),
    ("四番のビルドの詳細", "ja-JP", "BuildDetailsIntent", "ビルド4番は"),
    ("order me a pizza", "en-US", "AMAZON.FallbackIntent", "Sorry, I didn't get that"),
])
def test_say_resolves_and_answers(populated, utterance, locale, intent, fragment):
    answer = say(populated.project, utterance, "--locale", locale, "--new-session")
    assert answer["intent"] == intent
    assert fragment in answer["speech"], answer
    assert set(answer) == {"intent", "slots", "speech", "end_session"}


def test_say_slots_are_reported(populated):
    answer = say(populated.project, "is build twelve done", "--new-session")
    assert answer["slots"] == {"BuildNumber": "12"}
    assert answer["speech"] == "I can't find build 12. Your latest build is build 5."


def test_say_carries_a_conversation_stop_then_yes(empty_engine):
    project = empty_engine.project
    started = say(project, "start a build", "--new-session")
    assert started["speech"] == "Started build 1. Ask me later whether it's done." and started["end_session"]
    empty_engine.wait_build(1, step="Train")
    asked = say(project, "stop the build")
    assert asked["speech"] == "Build 1 is training. Do you want me to stop it?" and not asked["end_session"]
    done = say(project, "yes")
    assert done["intent"] == "AMAZON.YesIntent" and done["speech"] == "Stopped build 1. The live model is unchanged."
    assert empty_engine.build(1)["status"] == "ABORTED"
    text = cli(project, "say", "yes")  # the conversation ended: nothing to confirm any more
    assert "There's nothing to confirm right now" in text.stdout


@pytest.mark.parametrize("utterance,locale,intent", [
    ("could you tell me whether the build went through", "en-US", "BuildStatusIntent"),
    ("dites-moi donc quelle version du modèle est servie en ce moment", "fr-FR", "LiveModelIntent"),  # read-only: the engine is shared
    ("ビルドの結果を詳しく教えてください", "ja-JP", "BuildDetailsIntent"),
])
def test_say_explain_prints_the_top_three_intents(populated, utterance, locale, intent):
    out = cli(populated.project, "say", utterance, "--locale", locale, "--new-session", "--explain")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"resolved: {intent} (score ")
    ranked = [line.split() for line in lines[1:4]]
    assert [r[0] for r in ranked] == ["1.", "2.", "3."] and ranked[0][1] == intent
    scores = [float(r[2]) for r in ranked]
    assert scores == sorted(scores, reverse=True) and scores[0] > scores[1]
    assert lines[4].startswith(f"[{intent}")  # then the usual answer
    as_json = json.loads(cli(populated.project, "say", utterance, "--locale", locale, "--new-session", "--explain",
                             "--json").stdout)
    assert as_json["intent"] == intent and [c["intent"] for c in as_json["explain"]][0] == intent
    assert len(as_json["explain"]) == 3
