"""Screens: the APL build card is added only for devices that list Alexa.Presentation.APL, in their language."""
import json
import time

import pytest

from lambda_pipeline.errors import BuildNotFound
from lambda_pipeline.model import Build, EndpointInfo, StepRecord
from skill.app import SkillApp
from skill.envelopes import intent_request
from skill.settings import SkillSettings
from tests.helpers import REPO

NOW = time.time()
APL = "Alexa.Presentation.APL.RenderDocument"


class StandInBuilds:
    """A stand-in for the Builds port holding three builds and one live endpoint (no I/O)."""

    def __init__(self):
        gate = {"gate": {"metric": "validation:accuracy"}}
        done = [StepRecord(s, "SUCCEEDED", NOW - 300, NOW - 200) for s in ("Initialize", "Train", "Evaluate", "Register",
                                                                          "Deploy", "VerifyLive", "Notify")]
        self.builds = {
            1: Build("b1", 1, "wine-classifier", "SUCCEEDED", "cli", "first", NOW - 400, version="v1",
                     started_at=NOW - 390, ended_at=NOW - 200, metrics={"validation:accuracy": 0.93}, config=gate,
                     steps=done),
            2: Build("b2", 2, "wine-classifier", "FAILED", "api", "bad", NOW - 150, started_at=NOW - 140,
                     ended_at=NOW - 100, failed_step="Train", current_step="Train", failure_reason="ValueError: lr",
                     config=gate, steps=[StepRecord("Initialize", "SUCCEEDED", NOW - 140, NOW - 139),
                                         StepRecord("Train", "FAILED", NOW - 139, NOW - 100)]),
            3: Build("b3", 3, "wine-classifier", "RUNNING", "voice", "again", NOW - 60, started_at=NOW - 55,
                     current_step="Train", config={**gate, "image": {"build": True}},
                     steps=[StepRecord("Initialize", "SUCCEEDED", NOW - 55, NOW - 54),
                            StepRecord("BuildImage", "SUCCEEDED", NOW - 54, NOW - 40),
                            StepRecord("Train", "RUNNING", NOW - 40)]),
        }
        self.endpoint = EndpointInfo("wine", "InService", "wine-v1", "v1", "http://127.0.0.1:1", NOW - 200,
                                     build_id="b1")

    def get(self, ref):
        if ref is None:
            return self.builds[3]
        for build in self.builds.values():
            if ref in (build.number, build.id):
                return build
        raise BuildNotFound(f"no build {ref}")

    def endpoints(self):
        return [self.endpoint]

    def list(self, limit=5):
        return sorted(self.builds.values(), key=lambda b: -b.number)[:limit]


def ask(intent, slots=None, locale="en-US", screen=True):
    envelope = intent_request(intent, slots, locale)
    if screen:
        envelope["context"]["System"]["device"]["supportedInterfaces"] = {
            "Alexa.Presentation.APL": {"runtime": {"maxVersion": "2023.3"}}}
    return SkillApp(StandInBuilds(), SkillSettings(pipeline="wine-classifier")).handle(envelope)


def card(response):
    directives = [d for d in response["response"].get("directives", []) if d["type"] == APL]
    assert len(directives) == 1, response
    (directive,) = directives
    assert directive["document"]["type"] == "APL" and directive["token"]
    return directive["datasources"]["payload"]["card"]


def rows(data):
    return {row["label"]: row["value"] for row in data["rows"]}


def test_status_card_shows_number_status_step_progress_gate_and_live():
    running = card(ask("BuildStatusIntent"))
    assert running["title"] == "Build 3" and running["status"] == "Running"
    # this build builds an image: Initialize, BuildImage, Train... -> training is step 3 of 8
    assert rows(running) == {"Step": "training (3 of 8)", "Gate metric": "none", "Live": "version 1"}
    passed = card(ask("BuildStatusIntent", {"BuildNumber": "1"}))
    assert passed["status"] == "Passed"
    assert rows(passed) == {"Step": "all steps done (7 of 7)", "Gate metric": "validation:accuracy 0.93",
                            "Live": "version 1"}


def test_details_card_of_a_failed_build_names_the_failed_step():
    failed = card(ask("BuildDetailsIntent", {"BuildNumber": "2"}))
    assert failed["title"] == "Build 2" and failed["status"] == "Failed"
    assert rows(failed)["Step"] == "training (2 of 7)"


def test_live_card_shows_the_live_version():
    live = card(ask("LiveModelIntent"))
    assert live["title"] == "Build 1" and rows(live)["Live"] == "version 1"


@pytest.mark.parametrize("locale,title,status,step,live", [
    ("fr-FR", "Build n° 3", "En cours", "entraînement (3 sur 8)", "la version 1"),
    ("ja-JP", "ビルド3番", "実行中", "学習(8中3)", "バージョン1"),
])
def test_the_card_speaks_the_request_language(locale, title, status, step, live):
    data = card(ask("BuildStatusIntent", locale=locale))
    assert (data["title"], data["status"]) == (title, status)
    values = list(rows(data).values())
    assert values[0] == step and values[2] == live


@pytest.mark.parametrize("intent", ["BuildStatusIntent", "BuildDetailsIntent", "LiveModelIntent"])
def test_devices_without_a_screen_get_no_apl_directive(intent):
    response = ask(intent, screen=False)
    assert "outputSpeech" in response["response"]
    assert not [d for d in response["response"].get("directives", []) if d["type"].startswith("Alexa.Presentation")]


def test_other_answers_never_carry_a_card():
    response = ask("ListBuildsIntent")
    assert not response["response"].get("directives")


def test_the_manifest_declares_apl():
    manifest = json.loads((REPO / "interaction_model" / "skill.json").read_text(encoding="utf-8"))["manifest"]
    assert "ALEXA_PRESENTATION_APL" in [i["type"] for i in manifest["apis"]["custom"]["interfaces"]]
