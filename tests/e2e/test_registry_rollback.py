"""Only better models go live; every version is remembered; a failing deploy undoes itself; rollback on demand."""
import json
import time

import pytest

import skill.app
from lambda_pipeline.config import LOCAL_SKILL_ID, LOCAL_USER_ID
from sagebuild.client import SageBuild
from sagebuild.voice import spoken_text
from skill import lambda_handler
from skill.envelopes import intent_request
from skill.speech import Speech
from tests.helpers import EngineProcess, Load, cli, edit_config, invoke

pytestmark = pytest.mark.e2e

BROKEN_INFERENCE = '''
import json, os, joblib
def model_fn(model_dir):
    return joblib.load(os.path.join(model_dir, "model.joblib"))
def predict_fn(data, model):
    raise RuntimeError("feature scaler missing from the model bundle")
'''


def good(engine, reason, **hps):
    build = engine.wait_build(engine.start_build(reason, **hps)["number"])
    assert build["status"] == "SUCCEEDED", (build["failed_step"], build["failure_reason"])
    return build


def test_gate_against_the_live_model_with_and_without_tolerance(project, engine):
    edit_config(project, gate={"must_beat_live": True})
    first = good(engine, "strong")
    live_value = first["metrics"]["validation:accuracy"]
    weaker = engine.wait_build(engine.start_build("weaker", **{"n-estimators": 3, "max-depth": 2})["number"])
    value = weaker["metrics"]["validation:accuracy"]
    assert 0.85 <= value < live_value  # passes the minimum, not the live model
    assert weaker["status"] == "GATE_FAILED" and weaker["failed_step"] == "Evaluate"
    assert weaker["failure_reason"] == (f"validation:accuracy {value:.4g} is below the live model's "
                                        f"{live_value:.4g} (v1)")
    assert engine.endpoint()["model_version"] == "v1"
    edit_config(project, gate={"tolerance": 0.1})
    tolerated = good(engine, "weaker, within tolerance", **{"n-estimators": 3, "max-depth": 2})
    assert tolerated["version"] == "v3" and engine.endpoint()["model_version"] == "v3"


def test_a_deploy_whose_smoke_check_fails_rolls_back_by_itself(project, engine):
    first = good(engine, "good model")
    (project / "model" / "broken_inference.py").write_text(BROKEN_INFERENCE)
    edit_config(project, deploy={"entry_point": "broken_inference.py"})
    bad = engine.wait_build(engine.start_build("model without its scaler")["number"], timeout=120)
    assert bad["status"] == "FAILED" and bad["failed_step"] == "VerifyLive"
    assert bad["error_type"] == "SmokeTestFailed"
    assert "the smoke invocation with the sample payload answered HTTP 500" in bad["failure_reason"]
    assert "feature scaler missing" in bad["failure_reason"]
    assert bad["failure_reason"].endswith("rolled back automatically to v1, which serves again")
    assert [s["name"] for s in bad["steps"]][-1] == "RollBack"
    endpoint = engine.endpoint()
    assert endpoint["model_version"] == "v1" and endpoint["endpoint_config"] == first["endpoint_config"]
    assert invoke(endpoint["url"])[0] == 200
    models = {m["version"]: m for m in engine.api("GET", "/v1/models")["models"]}
    v2 = models["v2"]["deployments"]
    assert len(v2) == 1 and "feature scaler missing" in v2[0]["rolled_back_reason"] and v2[0]["replaced_at"]
    kinds = [d["kind"] for d in models["v1"]["deployments"]]
    assert kinds == ["auto-rollback", "build"]  # newest first
    assert models["v1"]["data_refs"]["train"]["digest"] and models["v1"]["source_ref"]["reason"] == "good model"


def test_a_first_deploy_that_fails_its_smoke_check_leaves_nothing_serving(project, engine):
    (project / "model" / "broken_inference.py").write_text(BROKEN_INFERENCE)
    edit_config(project, deploy={"entry_point": "broken_inference.py"})
    bad = engine.wait_build(engine.start_build("broken from the start")["number"], timeout=120)
    assert bad["status"] == "FAILED"
    assert bad["failure_reason"].endswith("no earlier version existed, so the endpoint was removed")
    assert engine.api("GET", "/v1/endpoints")["endpoints"] == []


@pytest.fixture(scope="module")
def three_versions(sample_template, tmp_path_factory):
    """An engine whose registry holds v1, v2, v3, with v3 live and the times between deployments."""
    import shutil
    project = tmp_path_factory.mktemp("versions") / "wine"
    shutil.copytree(sample_template, project)
    engine = EngineProcess(project).start()
    marks = []
    try:
        for n, hps in enumerate(({}, {"n-estimators": 50}, {"n-estimators": 20})):
            good(engine, f"version {n + 1}", **hps)
            time.sleep(0.3)
            marks.append(time.time())
        engine.marks = marks
        yield engine
    finally:
        engine.stop()


def test_what_was_live_at_a_time(three_versions):
    engine = three_versions
    before_everything = engine.build(1)["created_at"] - 1
    assert json.loads(cli(engine.project, "live", "--at", str(before_everything), "--json").stdout)["deployment"] is None
    for version, mark in zip(("v1", "v2", "v3"), engine.marks):
        answer = json.loads(cli(engine.project, "live", "--at", str(mark), "--json").stdout)
        assert answer["deployment"]["version"] == version, (version, answer)
    now = cli(engine.project, "live")
    assert now.stdout.startswith("v3 is live on wine-classifier")
    sb = SageBuild.local(engine.project, engine="connect")
    assert sb.live_at(engine.marks[1])["version"] == "v2"
    assert [d["kind"] for d in sb.history("v2")["deployments"]] == ["build"]


def test_rollback_to_the_previous_and_to_a_named_version(three_versions):
    engine = three_versions
    out = cli(engine.project, "rollback")
    assert out.returncode == 0, out.stderr
    assert "Rolling wine-classifier back from v3 to v2" in out.stdout and "v2 is live again" in out.stdout
    assert engine.endpoint()["model_version"] == "v2"
    out = cli(engine.project, "rollback", "1")
    assert out.returncode == 0 and engine.endpoint()["model_version"] == "v1"
    assert invoke(engine.endpoint()["url"])[0] == 200
    assert cli(engine.project, "rollback", "v1").returncode == 1  # already live
    missing = cli(engine.project, "rollback", "v9")
    assert missing.returncode == 2 and "no version 'v9' in the registry" in missing.stderr
    sb = SageBuild.local(engine.project, engine="connect")
    back = sb.rollback()  # previous good: v2
    assert back.version == "v2" and back.build_number == 2
    kinds = [d["kind"] for d in sb.history("v2")["deployments"]]
    assert kinds == ["rollback", "rollback", "build"]
    models = cli(engine.project, "models")
    assert "v2" in models.stdout and "(rollback)" in models.stdout


def test_zero_failed_requests_during_a_rollback_under_load(three_versions):
    engine = three_versions
    before = engine.endpoint()["model_version"]
    with Load(engine.endpoint()["url"]) as load:
        time.sleep(0.3)
        engine.api("POST", "/v1/rollback", {})
        time.sleep(0.3)
    assert engine.endpoint()["model_version"] != before
    assert len(load.results) > 100
    assert load.failures == []


@pytest.mark.parametrize("locale", ["en-US", "fr-FR", "ja-JP"])
def test_voice_rollback_asks_first_naming_the_version(three_versions, monkeypatch, locale):
    engine = three_versions
    monkeypatch.setenv("SAGEBUILD_ENGINE_URL", engine.url)
    monkeypatch.setenv("SAGEBUILD_ENGINE_TOKEN", engine.token)
    monkeypatch.setenv("SKILL_ID", LOCAL_SKILL_ID)
    monkeypatch.setenv("ALLOWED_USER_IDS", LOCAL_USER_ID)
    monkeypatch.setenv("PIPELINE_NAME", "wine-classifier")
    monkeypatch.setattr(skill.app, "_default", None)
    speech = Speech(locale)
    plan = engine.api("GET", "/v1/rollback/plan")
    ask = lambda_handler(intent_request("RollbackIntent", None, locale), None)
    assert spoken_text(ask) == speech.say("ROLLBACK_CONFIRM", pipeline="wine classifier",
                                          current=plan["from"][1:], target=plan["to"][1:])  # "version 2", not "v2"
    assert ask["response"]["shouldEndSession"] is False
    assert engine.endpoint()["model_version"] == plan["from"]  # nothing happens before yes
    stranger = lambda_handler(intent_request("AMAZON.YesIntent", None, locale, new_session=False,
                                             attributes=ask["sessionAttributes"], user_id="amzn1.ask.account.x"), None)
    assert spoken_text(stranger) == speech.raw("NOT_ALLOWED")
    assert engine.endpoint()["model_version"] == plan["from"]
    yes = lambda_handler(intent_request("AMAZON.YesIntent", None, locale, new_session=False,
                                        attributes=ask["sessionAttributes"]), None)
    assert spoken_text(yes) == speech.say("ROLLBACK_DONE", version=plan["to"][1:])
    assert engine.endpoint()["model_version"] == plan["to"]
    named = lambda_handler(intent_request("RollbackIntent", {"Version": "9"}, locale), None)
    assert spoken_text(named) == speech.say("ROLLBACK_NOT_FOUND", version="9")
