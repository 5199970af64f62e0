"""Two projects running side by side, `say` from a third folder: it answers for the one named,
and across both when none is (the registry of running engines; real engines, one build)."""
import json
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from skill.envelopes import intent_request
from tests.helpers import SAGEBUILD, EngineProcess, cli, read_config, write_config

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_engines(sample_template, tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEBUILD_HOME", str(tmp_path / "home"))  # this test's registry alone
    engines = []
    try:
        for name in ("wine-classifier", "fraud"):
            folder = tmp_path / name
            shutil.copytree(sample_template, folder)
            write_config(folder, {**read_config(folder), "pipeline": name})
            engines.append(EngineProcess(folder).start())
        yield engines
    finally:
        for engine in engines:
            engine.stop()


def say(folder, *args):
    out = cli(folder, "say", *args, "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_say_from_a_third_folder_reaches_every_running_pipeline(two_engines, tmp_path):
    wine, fraud = two_engines
    wine.start_build("voice test")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    fraud_only = say(elsewhere, "is the fraud build done", "--new-session")
    assert fraud_only["slots"]["Pipeline"]["id"] == "fraud"
    assert fraud_only["speech"].startswith("fraud: You have no builds yet")
    assert say(elsewhere, "is the wine classifier build done", "--new-session")["speech"].startswith(
        "wine classifier: Build 1")
    across = say(elsewhere, "is my build done", "--new-session")["speech"]
    assert across.startswith("wine classifier: build 1") and "fraud: no builds yet." in across
    assert say(elsewhere, "ビルドは終わった", "--locale", "ja-JP", "--new-session")["speech"].startswith("ワイン分類器：ビルド1番")
    assert "fraud : aucun build" in say(elsewhere, "où en est le build", "--locale", "fr-FR", "--new-session")["speech"]
    asked = say(elsewhere, "start a build", "--new-session")
    assert asked["speech"] == "Which pipeline: fraud or wine classifier?" and not asked["end_session"]
    answered = say(elsewhere, "fraud")
    assert answered["intent"] == "StartBuildIntent" and answered["speech"].startswith("fraud: Started build 1")
    listed = cli(elsewhere, "pipelines", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert set(rows) == {"wine-classifier", "fraud"}
    assert rows["fraud"]["folder"] == str(tmp_path / "fraud") and rows["fraud"]["url"] == fraud.url
    assert rows["fraud"]["latest_build"]["number"] == 1
    assert "token" not in json.dumps(rows)
    status = cli(elsewhere, "--pipeline", "fraud", "status", "--json")  # a build command, by name
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["pipeline"] == "fraud"
    from sagebuild.client import SageBuild
    assert SageBuild.pipelines() == ["fraud", "wine-classifier"]
    client = SageBuild.pipeline("fraud")
    assert client.status().number == 1 and client.project == tmp_path / "fraud"
    assert client.config.get()["pipeline"] == "fraud"
    missing = cli(elsewhere, "--pipeline", "churn", "status")
    assert missing.returncode == 2 and "no pipeline is named 'churn'" in missing.stderr


def test_skill_serve_from_a_third_folder_answers_for_every_running_pipeline(two_engines, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = tmp_path / "serve.log"
    proc = subprocess.Popen([SAGEBUILD, "--project", str(elsewhere), "skill", "serve", "--no-verify"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    try:
        deadline, url = time.monotonic() + 30, None
        while url is None and time.monotonic() < deadline:
            match = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text())
            url = match.group(1) if match else None
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        assert url and "for fraud, wine-classifier" in log.read_text()
        body = json.dumps(intent_request("BuildStatusIntent", {"Pipeline": "fraud"})).encode()
        request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as resp:
            answer = json.loads(resp.read())
        assert answer["response"]["outputSpeech"]["ssml"].startswith("<speak>fraud: You have no builds yet")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
