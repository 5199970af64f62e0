"""One skill for every pipeline: answers across pipelines, a named one, "which pipeline?",
per-pipeline permissions and the names Alexa hears (in-process requests, no I/O)."""
import re
import time

import pytest

from lambda_pipeline.errors import BuildNotFound
from lambda_pipeline.model import Build, EndpointInfo, PipelineInfo
from lambda_pipeline.pipelines import FixedPipelines
from skill.app import SkillApp
from skill.envelopes import intent_request, launch_request
from skill.settings import SkillSettings

NOW = time.time()
LEAD, DEV = "amzn1.ask.account.lead", "amzn1.ask.account.dev"


class MemoryBuilds:
    """A pipeline's builds in memory: start adds a running build, stop ends it."""

    def __init__(self, name, builds, live=None):
        self.name, self.builds, self.live = name, list(builds), live

    def list(self, limit=20):
        return sorted(self.builds, key=lambda b: -b.number)[:limit]

    def get(self, ref=None):
        if ref is None:
            if not self.builds:
                raise BuildNotFound("no builds")
            return self.list(1)[0]
        for build in self.builds:
            if ref in (build.number, build.id):
                return build
        raise BuildNotFound(f"no build {ref}")

    def endpoints(self):
        return [self.live] if self.live else []

    def start(self, reason, source="cli", hyperparameters=None):
        build = Build(f"{self.name}-{len(self.builds) + 1}", len(self.builds) + 1, self.name, "RUNNING", source, reason,
                      time.time(), started_at=time.time(), current_step="Train")
        self.builds.append(build)
        return build

    def stop(self, ref=None):
        build = self.get(ref)
        build.status, build.ended_at = "ABORTED", time.time()
        return build


def ended(name, number, status, ago, version=None):
    return Build(f"{name}-{number}", number, name, status, "cli", "r", NOW - ago - 60, version=version,
                 started_at=NOW - ago - 50, ended_at=NOW - ago, failed_step="Train" if status == "FAILED" else None,
                 failure_reason="ValueError: lr" if status == "FAILED" else None)


def running(name, number, ago):
    return Build(f"{name}-{number}", number, name, "RUNNING", "cli", "r", NOW - ago, started_at=NOW - ago,
                 current_step="Train")


def directory(**extra):
    wine = MemoryBuilds("wine-classifier", [ended("wine-classifier", 1, "SUCCEEDED", 600, "v1"),
                                            running("wine-classifier", 2, 120)],
                        EndpointInfo("wine-classifier", "InService", "c1", "v1", None, NOW - 600))
    fraud = MemoryBuilds("fraud", [ended("fraud", 1, "SUCCEEDED", 900, "v1"), ended("fraud", 2, "FAILED", 300)])
    pipelines = FixedPipelines({PipelineInfo("wine-classifier", frozenset({LEAD, DEV})): wine,
                                PipelineInfo("fraud", frozenset({LEAD})): fraud})
    for name, builds in extra.items():
        pipelines.add(PipelineInfo(name, frozenset({LEAD})), builds)
    return pipelines, wine, fraud


def spoken(response):
    ssml = response["response"]["outputSpeech"]["ssml"]
    return re.sub(r"<[^>]+>", "", ssml)


def ask(app, intent, slots=None, locale="en-US", user=LEAD, session=None):
    session = {} if session is None else session
    envelope = intent_request(intent, slots, locale, user_id=user, new_session="id" not in session,
                              attributes=session.get("attributes"), session_id=session.get("id"))
    response = app.handle(envelope)
    session.update(attributes=response.get("sessionAttributes") or {}, id=envelope["session"]["sessionId"])
    return response


@pytest.mark.parametrize("locale, wine, fraud, running_word, failed_word", [
    ("en-US", "wine classifier", "fraud", "is running", "failed"),
    ("fr-FR", "wine classifier", "fraud", "en cours", "échoué"),
    ("ja-JP", "ワイン分類器", "不正", "実行中", "失敗"),
])
def test_is_my_build_done_answers_across_pipelines_running_first(locale, wine, fraud, running_word, failed_word):
    app = SkillApp(directory()[0], SkillSettings())
    text = spoken(ask(app, "BuildStatusIntent", locale=locale))
    assert text.index(wine) < text.index(fraud)  # the running build first, then the latest end
    assert running_word in text and failed_word in text
    assert "2" in text


@pytest.mark.parametrize("locale, said, other", [("en-US", "fraud", "wine classifier"),
                                                 ("fr-FR", "fraud", "wine classifier"),
                                                 ("ja-JP", "不正", "ワイン分類器")])
def test_is_the_fraud_build_done_answers_for_fraud_only(locale, said, other):
    app = SkillApp(directory()[0], SkillSettings())
    text = spoken(ask(app, "BuildStatusIntent", {"Pipeline": said}, locale=locale))
    assert said in text and other not in text
    assert "Train" in text or "train" in text.lower() or "学習" in text or "entraîn" in text


def test_a_pipeline_resolved_by_the_dynamic_authority_is_found_even_if_the_words_differ():
    app = SkillApp(directory()[0], SkillSettings())
    text = spoken(ask(app, "BuildStatusIntent", {"Pipeline": {"value": "the fraud model", "id": "fraud"}}))
    assert text.startswith("fraud:") and "failed" in text


def test_an_unknown_pipeline_gets_the_names_there_are():
    app = SkillApp(directory()[0], SkillSettings())
    text = spoken(ask(app, "BuildStatusIntent", {"Pipeline": "churn"}))
    assert text == "I don't know a pipeline called churn. I know fraud or wine classifier."


def test_answers_across_many_pipelines_are_bounded():
    extra = {f"model-{i}": MemoryBuilds(f"model-{i}", [ended(f"model-{i}", 1, "SUCCEEDED", 1000 + i)]) for i in range(5)}
    app = SkillApp(directory(**extra)[0], SkillSettings())
    text = spoken(ask(app, "BuildStatusIntent"))
    assert text.count(": build") == 3 and text.endswith("And 4 more.")


def test_start_without_a_name_asks_which_and_the_answer_is_remembered_for_the_session():
    pipelines, wine, fraud = directory()
    app = SkillApp(pipelines, SkillSettings())
    session = {}
    asked = ask(app, "StartBuildIntent", session=session)
    assert spoken(asked) == "Which pipeline: fraud or wine classifier?"
    assert asked["response"]["shouldEndSession"] is False
    [elicit] = [d for d in asked["response"]["directives"] if d["type"] == "Dialog.ElicitSlot"]
    assert elicit["slotToElicit"] == "Pipeline" and elicit["updatedIntent"]["name"] == "StartBuildIntent"
    answer = spoken(ask(app, "StartBuildIntent", {"Pipeline": "fraud"}, session=session))  # "fraud"
    assert answer.startswith("fraud: Started build 3")
    assert len(fraud.builds) == 3 and len(wine.builds) == 2
    again = spoken(ask(app, "StopBuildIntent", session=session))  # no name: the one chosen before
    assert again.startswith("fraud: Build 3 is")
    assert spoken(ask(app, "AMAZON.YesIntent", session=session)) == "fraud: Stopped build 3. The live model is unchanged."
    assert fraud.builds[-1].status == "ABORTED"


def test_the_answer_to_which_pipeline_may_come_as_any_intent_naming_it():
    pipelines, wine, fraud = directory()
    app = SkillApp(pipelines, SkillSettings())
    session = {}
    ask(app, "StartBuildIntent", session=session)
    answer = spoken(ask(app, "BuildStatusIntent", {"Pipeline": "wine classifier"}, session=session))
    assert answer.startswith("wine classifier: Started build 3") and len(wine.builds) == 3


@pytest.mark.parametrize("locale, refusal", [
    ("en-US", "Sorry, you're not allowed to start, stop or roll back fraud."),
    ("fr-FR", "Désolé, vous n'êtes pas autorisé à lancer, arrêter ou annuler un déploiement de fraud."),
    ("ja-JP", "すみません、不正のビルドの開始、停止、ロールバックは許可されていません。"),
])
def test_a_user_who_may_act_on_one_pipeline_only_is_refused_on_the_other_naming_it(locale, refusal):
    pipelines, wine, fraud = directory()
    app = SkillApp(pipelines, SkillSettings())
    said = "不正" if locale == "ja-JP" else "fraud"
    assert spoken(ask(app, "StartBuildIntent", {"Pipeline": said}, locale=locale, user=DEV)).startswith(refusal)
    assert len(fraud.builds) == 2
    wine_said = "ワイン分類器" if locale == "ja-JP" else "wine classifier"
    ask(app, "StartBuildIntent", {"Pipeline": wine_said}, locale=locale, user=DEV)
    assert len(wine.builds) == 3  # the dev may act on wine


def test_one_pipeline_answers_as_before_without_its_name():
    wine = directory()[1]
    app = SkillApp(wine, SkillSettings(pipeline="wine-classifier"))
    text = spoken(ask(app, "BuildStatusIntent"))
    assert text.startswith("Build 2 is still running")
    assert spoken(ask(app, "BuildStatusIntent", {"Pipeline": "fraud"})) == "I only know the wine classifier pipeline."


def dynamic(response):
    return [d for d in response["response"].get("directives") or [] if d["type"] == "Dialog.UpdateDynamicEntities"]


def test_the_session_start_sends_the_pipelines_alexa_should_hear_and_one_registered_later():
    pipelines = directory()[0]
    app = SkillApp(pipelines, SkillSettings())
    launch = app.handle(launch_request("ja-JP"))
    [directive] = dynamic(launch)
    assert directive["updateBehavior"] == "REPLACE"
    [slot_type] = directive["types"]
    assert slot_type["name"] == "PIPELINE_NAME"
    values = {v["id"]: v["name"] for v in slot_type["values"]}
    assert values["wine-classifier"] == {"value": "ワイン分類器", "synonyms": ["wine classifier"]}
    assert values["fraud"]["value"] == "不正"
    session = {"attributes": launch["sessionAttributes"], "id": "amzn1.echo-api.session.s1"}
    pipelines.add(PipelineInfo("wine-prod", frozenset({LEAD})), MemoryBuilds("wine-prod", [ended("wine-prod", 1, "SUCCEEDED", 30)]))
    response = ask(app, "ListBuildsIntent", {"Pipeline": "本番"}, locale="ja-JP", session=session)
    assert spoken(response).startswith("ワイン本番：")  # found, though registered after the session began
    [again] = dynamic(response)  # the pipelines changed: the session hears the new one too
    synonyms = {v["id"]: [v["name"]["value"], *v["name"]["synonyms"]] for v in again["types"][0]["values"]}
    assert "prod" in synonyms["wine-prod"] and "本番" in synonyms["wine-prod"]


def test_a_one_shot_answer_carries_no_dynamic_entities():
    app = SkillApp(directory()[0], SkillSettings())
    assert not dynamic(ask(app, "BuildStatusIntent"))


class DeadBuilds(MemoryBuilds):
    """An engine that stopped answering (its list raises, as HttpBuilds does for a dead engine)."""

    def list(self, limit=20):
        from lambda_pipeline.errors import EngineNotRunning
        raise EngineNotRunning("connection refused")

    def endpoints(self):
        return self.list()


class SlowBuilds(MemoryBuilds):
    def list(self, limit=20):
        time.sleep(0.5)
        return super().list(limit)

    def endpoints(self):
        time.sleep(0.5)
        return super().endpoints()


@pytest.mark.parametrize("intent", ["BuildStatusIntent", "LiveModelIntent", "ListBuildsIntent"])
def test_a_pipeline_that_does_not_answer_is_said_so_and_the_others_still_are(intent, monkeypatch):
    import skill.handlers
    monkeypatch.setattr(skill.handlers, "ACROSS_SECONDS", 0.2)
    monkeypatch.setattr(skill.handlers.gather, "__defaults__", (0.2,))
    monkeypatch.setattr(skill.handlers, "ACROSS_ITEMS", 4)
    pipelines = directory(churn=DeadBuilds("churn", []), sales=SlowBuilds("sales", []))[0]
    app = SkillApp(pipelines, SkillSettings())
    started = time.monotonic()
    text = spoken(ask(app, intent))
    assert time.monotonic() - started < 0.45  # the slow one is not waited for
    assert "churn: not answering right now." in text and "sales: not answering right now." in text
    assert "wine classifier" in text or "fraud" in text


def test_since_you_last_asked_covers_every_pipeline_and_what_was_told_is_remembered_per_pipeline():
    from lambda_pipeline.audience import Audience, MemoryState
    pipelines, wine, fraud = directory()
    memory = MemoryState()
    app = SkillApp(pipelines, SkillSettings(), memory)
    audience = Audience(memory)
    assert "fraud:" not in spoken(app.handle(launch_request(user_id=LEAD)))  # first time: nothing to catch up on
    assert audience.heard("fraud", LEAD).at is not None and audience.heard("wine-classifier", LEAD).at is not None
    time.sleep(0.02)
    after = NOW - time.time() - 0.01  # "ago" of a moment after that launch
    wine.builds.append(ended("wine-classifier", 3, "SUCCEEDED", after, "v3"))  # both end after that launch
    fraud.builds.append(ended("fraud", 3, "FAILED", after))
    fraud.builds.append(ended("fraud", 4, "SUCCEEDED", after, "v2"))
    time.sleep(0.02)
    ask(app, "BuildStatusIntent", {"Pipeline": "fraud"})  # heard how fraud's build 4 ended
    assert 4 in audience.heard("fraud", LEAD).builds and not audience.heard("wine-classifier", LEAD).builds
    summary = spoken(app.handle(launch_request(user_id=LEAD)))
    fraud_part, wine_part = summary.split("wine classifier: ")
    assert fraud_part.startswith("fraud: ") and "build 3 failed" in fraud_part
    assert "build 4" not in fraud_part  # told already
    assert "build 3" in wine_part.split("Welcome")[0]
    assert "fraud: " not in spoken(app.handle(launch_request(user_id=LEAD)))  # all heard now
