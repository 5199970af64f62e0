"""Outside in: `sagebuild skill serve` as a real process, a real Alexa client (virtual-alexa) talking to it."""
import json
import re
import subprocess
import time

import pytest

from lambda_pipeline.config import LOCAL_SKILL_ID, LOCAL_USER_ID
from skill.nlu import MODEL_DIR
from tests.helpers import REPO, SAGEBUILD

pytestmark = pytest.mark.e2e
SCRIPT = REPO / "tests" / "outside_in" / "virtual_alexa.js"


@pytest.fixture
def skill_server(populated):
    log = populated.project / "skill-serve.log"
    proc = subprocess.Popen([SAGEBUILD, "--project", str(populated.project), "skill", "serve", "--no-verify"],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    url = None
    while time.monotonic() < deadline and url is None:
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", log.read_text())
        url = match.group(1) if match else None
        if proc.poll() is not None:
            raise RuntimeError(log.read_text())
        time.sleep(0.05)
    assert url, log.read_text()
    yield url
    proc.terminate()
    proc.wait(timeout=10)


def talk(url, steps, user=LOCAL_USER_ID):
    result = subprocess.run(["node", str(SCRIPT), url, str(MODEL_DIR / "en-US.json"), LOCAL_SKILL_ID, user,
                             json.dumps(steps)], capture_output=True, text=True, timeout=60, cwd=str(REPO))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def model_samples(intent):
    model = json.loads((MODEL_DIR / "en-US.json").read_text())["interactionModel"]["languageModel"]
    return next(i for i in model["intents"] if i["name"] == intent)["samples"]


def test_one_shot_questions_from_the_model(skill_server):
    status_samples = [s for s in model_samples("BuildStatusIntent") if "{" not in s][:3]
    for sample in status_samples:
        (answer,) = talk(skill_server, [{"utter": sample}])
        assert "Build 5 is still running. It is training" in answer["speech"], (sample, answer)
        assert answer["end"] is True
    (live,) = talk(skill_server, [{"utter": "what model is live"}])
    assert "Version 1 of wine classifier is live" in live["speech"] and live["end"]
    (failed,) = talk(skill_server, [{"utter": "why did build 2 fail"}])
    assert "Build 2 failed" in failed["speech"] and "learning rate must be positive" in failed["speech"]
    (listed,) = talk(skill_server, [{"utter": "list my builds"}])
    assert listed["speech"].startswith("<speak>Your last 5 builds: build 5 is running")


def test_a_conversation_keeps_the_session_until_stop(skill_server):
    launch, status, bye = talk(skill_server, [{"launch": True}, {"utter": "did build 1 pass"}, {"utter": "stop"}])
    assert "Welcome to Sage Build" in launch["speech"] and launch["end"] is False
    assert "Build 1 passed" in status["speech"] and "It is live now" in status["speech"] and status["end"] is False
    assert "Goodbye" in bye["speech"] and bye["end"] is True


def test_stop_asks_first_and_a_stranger_may_not(skill_server, populated):
    ask, no = talk(skill_server, [{"utter": "stop my build"}, {"utter": "no"}])
    assert "Build 5 is training. Do you want me to stop it?" in ask["speech"] and ask["end"] is False
    assert "OK, build 5 keeps running." in no["speech"] and no["end"] is True
    (refused,) = talk(skill_server, [{"utter": "stop my build"}], user="amzn1.ask.account.stranger")
    assert "not allowed to start or stop builds" in refused["speech"]
    assert populated.build(5)["status"] == "RUNNING"
