"""`sagebuild up` delivers through the alexa sink, to a STAND-IN of Amazon's APIs on 127.0.0.1:
the Proactive Events API is down (503) when the build ends; the build succeeds anyway, the webhook
gets its notification at once, and the Alexa event goes out on a later retry, after the build ended."""
import json
import time

import pytest

from tests.functional.alexa_standin import CLIENT_ID, CLIENT_SECRET, AlexaStandIn
from tests.functional.test_notifications import Receiver
from tests.helpers import EngineProcess, edit_config, read_config, write_config

pytestmark = pytest.mark.e2e
ME = "amzn1.ask.account.me"


def test_the_api_down_when_a_build_ends_neither_fails_nor_slows_it(project, monkeypatch):
    monkeypatch.setenv("SB_ALEXA_ID", CLIENT_ID)  # the engine subprocess inherits them
    monkeypatch.setenv("SB_ALEXA_SECRET", CLIENT_SECRET)
    receiver = Receiver()
    with AlexaStandIn() as amazon:
        amazon.script = [503, 503, 503]  # down for the first three tries, then back
        config = read_config(project)
        config["notifications"] = [
            {"type": "alexa", "client_id_env": "SB_ALEXA_ID", "client_secret_env": "SB_ALEXA_SECRET",
             "api_url": amazon.api_url, "token_url": amazon.token_url},
            {"type": "webhook", "url": receiver.url}]
        write_config(project, config)
        edit_config(project, skill={"allowed_user_ids": [ME]})
        engine = EngineProcess(project).start()
        try:
            number = engine.start_build("alexa, tell me")["number"]
            build = engine.wait_build(number)
            assert build["status"] == "SUCCEEDED"
            deadline = time.monotonic() + 20
            while not amazon.accepted() and time.monotonic() < deadline:
                time.sleep(0.1)
        finally:
            engine.stop()
            receiver.close()
        events = [json.loads(body)["event"] for _, body in receiver.received]
        assert events == ["build.started", "build.succeeded"]  # the webhook did not wait for Alexa
        assert [e["status"] for e in amazon.events] == [503, 503, 503, 202]  # build.started is not an alexa event
        (body,) = amazon.accepted()
        assert body["referenceId"] == f"{build['id']}~build~succeeded"
        assert body["relevantAudience"] == {"type": "Unicast", "payload": {"user": ME}}
        notify = next(s for s in build["steps"] if s["name"] == "Notify")
        assert notify["status"] == "SUCCEEDED"
        assert build["ended_at"] < amazon.events[-1]["at"]  # the build was over before Alexa's retries ended
