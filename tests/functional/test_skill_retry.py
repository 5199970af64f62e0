""""Retry my build" by voice: asked first, for allowed users only, saying where it goes on from,
and refusing what cannot be retried with the reason (in-process requests over fake pipelines)."""
import dataclasses
import time

import pytest

from lambda_pipeline.errors import AlreadyRunning, NotRetryable
from lambda_pipeline.model import Build, PipelineInfo
from lambda_pipeline.pipelines import FixedPipelines
from skill.app import SkillApp
from skill.settings import SkillSettings
from skill.speech import Speech
from tests.functional.test_skill_pipelines import LEAD, MemoryBuilds, ask, spoken

LOCALES = ["en-US", "fr-FR", "ja-JP"]
OTHER = "amzn1.ask.account.someone-else"


class RetryableBuilds(MemoryBuilds):
    """Builds that can be retried: the build keeps its number, its attempt counts up."""

    def __init__(self, name, builds):
        super().__init__(name, builds)
        self.retried = []

    def retry(self, ref=None):
        build = self.get(ref)
        if any(b.status == "RUNNING" for b in self.builds):
            raise AlreadyRunning("a build runs")
        if build.status not in ("FAILED", "INTERRUPTED", "ABORTED"):
            raise NotRetryable(f"build {build.number} is {build.status.lower()}")
        self.retried.append(build.number)
        again = dataclasses.replace(build, status="RUNNING", attempt=build.attempt + 1, ended_at=None,
                                    current_step=build.failed_step, failed_step=None, failure_reason=None)
        self.builds = [again if b.number == build.number else b for b in self.builds]
        return again


def failed(number, status="FAILED", step="Deploy", config=True):
    now = time.time()
    return Build(f"b{number}", number, "wine-classifier", status, "cli", "r", now - 100, version=f"v{number}",
                 started_at=now - 90, ended_at=now - 30, failed_step=step, current_step=step,
                 failure_reason="port 8080 is taken", config={"image": {"build": False}} if config else None)


def app_with(*builds):
    store = RetryableBuilds("wine-classifier", builds)
    pipelines = FixedPipelines({PipelineInfo("wine-classifier", frozenset({LEAD})): store})
    return SkillApp(pipelines, SkillSettings(allowed_user_ids=frozenset({LEAD}))), store


@pytest.mark.parametrize("locale", LOCALES)
def test_retry_asks_first_then_goes_on_from_the_failed_step_and_status_names_the_attempt(locale):
    app, store = app_with(failed(1, "SUCCEEDED", step=None), failed(2))
    speech = Speech(locale)
    session = {}
    asked = ask(app, "RetryBuildIntent", locale=locale, session=session)
    assert spoken(asked) == speech.plain("RETRY_CONFIRM", number=2, step=speech.step("Deploy"))
    assert asked["response"]["shouldEndSession"] is False and store.retried == []  # nothing before yes
    yes = ask(app, "AMAZON.YesIntent", locale=locale, session=session)
    assert store.retried == [2]
    assert spoken(yes) == speech.plain("RETRY_DONE", number=2, step=speech.step("Deploy"), ordinal=speech.ordinal(2))
    status = spoken(ask(app, "BuildStatusIntent", locale=locale))
    assert status.endswith(speech.plain("STATUS_ATTEMPT", ordinal=speech.ordinal(2)))


@pytest.mark.parametrize("locale", LOCALES)
def test_no_keeps_the_build_as_it_is(locale):
    app, store = app_with(failed(3, "INTERRUPTED", step="Train"))
    speech = Speech(locale)
    session = {}
    ask(app, "RetryBuildIntent", {"BuildNumber": 3}, locale=locale, session=session)
    no = ask(app, "AMAZON.NoIntent", locale=locale, session=session)
    assert spoken(no) == speech.plain("RETRY_KEEP", number=3) and store.retried == []


@pytest.mark.parametrize("status, key", [("GATE_FAILED", "RETRY_JUDGED"), ("SUCCEEDED", "RETRY_SUCCEEDED"),
                                         ("RUNNING", "RETRY_NOT_ENDED")])
def test_what_cannot_be_retried_is_refused_with_the_reason(status, key):
    app, store = app_with(failed(4, status))
    for locale in LOCALES:
        answer = ask(app, "RetryBuildIntent", locale=locale)
        assert spoken(answer) == Speech(locale).plain(key, number=4)
        assert "sessionAttributes" not in answer or not answer["sessionAttributes"].get("pending")
    assert store.retried == []


def test_a_build_that_never_started_is_not_offered_a_retry():
    app, _ = app_with(failed(5, config=False))
    assert spoken(ask(app, "RetryBuildIntent")) == Speech("en-US").plain("RETRY_NEVER_STARTED", number=5)


def test_only_allowed_users_may_retry():
    app, store = app_with(failed(6))
    answer = spoken(ask(app, "RetryBuildIntent", user=OTHER))
    assert "retry" not in answer.lower() and store.retried == []
    assert answer == spoken(ask(app, "StopBuildIntent", user=OTHER))  # the same refusal as any action


def test_the_first_attempt_is_not_named_and_the_fifth_is():
    speech = Speech("en-US")
    app, _ = app_with(failed(7))
    assert "attempt" not in spoken(ask(app, "BuildStatusIntent"))
    assert speech.ordinal(5) == "fifth" and speech.ordinal(12) == "12th"
    assert Speech("fr-FR").ordinal(2) == "deuxième" and Speech("ja-JP").ordinal(3) == "3回目"
