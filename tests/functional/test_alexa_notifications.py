"""The alexa sink against a STAND-IN of Login with Amazon and the Proactive Events API (127.0.0.1).

The stand-in (tests/functional/alexa_standin.py) checks what Amazon documents and answers with
Amazon's status codes; these tests prove the requests are what Amazon asks for and that the
sink follows the retry rules. No notification reaches a real device here.
"""
import datetime as dt
import json
import logging
import re

import pytest

from lambda_pipeline.adapters.local.notifier import ConfiguredNotifier
from lambda_pipeline.alexa_events import (AlexaSink, DeliveryFailed, TokenCache, api_url_for, event_body,
                                          reference_id)
from lambda_pipeline.audience import Audience, MemoryState
from lambda_pipeline.config import validate_config
from lambda_pipeline.errors import ConfigError
from tests.functional.alexa_standin import CLIENT_ID, CLIENT_SECRET, AlexaStandIn, validate_event
from tests.functional.test_notifications import PAYLOAD, Receiver

ME, YOU = "amzn1.ask.account.me", "amzn1.ask.account.you"
SUCCESS = {**PAYLOAD, "build_id": "b0123456789a", "status": "SUCCEEDED", "failure_reason": None, "failed_step": None}


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def standin():
    with AlexaStandIn() as server:
        yield server


def sink(standin, sleeps=None, tokens=None, clock=None, **kwargs):
    options = dict(users=[ME, YOU], api_url=standin.api_url, token_url=standin.token_url,
                   sleep=(sleeps.append if sleeps is not None else (lambda s: None)), tokens=tokens or TokenCache())
    if clock is not None:
        options["clock"] = clock
    options.update(kwargs)
    return AlexaSink(CLIENT_ID, CLIENT_SECRET, **options)


def test_a_failed_build_becomes_one_urgent_message_alert_per_allowed_user(standin):
    tokens = TokenCache()
    answers = sink(standin, tokens=tokens).send("build.failed", PAYLOAD)
    assert [a.status for a in answers] == [202, 202]
    (form,) = standin.token_requests  # one token serves both users
    assert form == {"grant_type": "client_credentials", "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                    "scope": "alexa::proactive_events"}
    first, second = standin.accepted()
    assert [b["relevantAudience"] for b in (first, second)] == [{"type": "Unicast", "payload": {"user": ME}},
                                                                 {"type": "Unicast", "payload": {"user": YOU}}]
    assert first["event"] == {"name": "AMAZON.MessageAlert.Activated", "payload": {
        "state": {"status": "UNREAD", "freshness": "NEW"},
        "messageGroup": {"creator": {"name": "localizedattribute:creatorName"}, "count": 1, "urgency": "URGENT"}}}
    assert {a["locale"]: a["creatorName"] for a in first["localizedAttributes"]} == {
        "en-US": "Sage Build", "fr-FR": "Sage Build", "ja-JP": "セージビルド"}
    assert first["referenceId"] == "b1~build~failed"
    stamp = dt.datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
    expiry = dt.datetime.fromisoformat(first["expiryTime"].replace("Z", "+00:00"))
    assert dt.timedelta(minutes=5) <= expiry - stamp <= dt.timedelta(hours=24)
    assert abs(stamp.timestamp() - dt.datetime.now(dt.timezone.utc).timestamp()) < 60
    event = standin.events[0]
    assert event["path"] == "/v1/proactiveEvents/stages/development"
    assert re.fullmatch(r"Bearer Atc\|[0-9a-f]{32}", event["headers"]["Authorization"])


def test_success_is_not_urgent_and_multicast_goes_out_once(standin):
    sink(standin, multicast=True).send("build.succeeded", SUCCESS)
    (body,) = standin.accepted()
    assert "urgency" not in body["event"]["payload"]["messageGroup"]
    assert body["relevantAudience"] == {"type": "Multicast", "payload": {}}
    assert body["referenceId"] == "b0123456789a~build~succeeded"


def test_the_same_event_again_is_a_duplicate_that_counts_as_delivered(standin):
    first = sink(standin, users=[ME]).send("build.failed", PAYLOAD)
    again = sink(standin, users=[ME]).send("build.failed", PAYLOAD)  # e.g. a retried Lambda
    assert [a.status for a in first + again] == [202, 409]
    assert len(standin.accepted()) == 1


def test_the_token_is_cached_until_shortly_before_it_expires(standin):
    clock = Clock()
    standin.clock = clock
    tokens = TokenCache(clock=clock)
    alexa = sink(standin, tokens=tokens, users=[ME], clock=clock)
    alexa.send("build.failed", {**PAYLOAD, "build_id": "b1"})
    clock.now += 3000  # 10 minutes left: still cached
    alexa.send("build.failed", {**PAYLOAD, "build_id": "b2"})
    assert len(standin.token_requests) == 1
    clock.now += 550  # 50 seconds left: renewed before Amazon would refuse it
    alexa.send("build.failed", {**PAYLOAD, "build_id": "b3"})
    assert len(standin.token_requests) == 2
    assert [e["status"] for e in standin.events] == [202, 202, 202]


def test_a_token_amazon_no_longer_accepts_is_refreshed_once(standin):
    tokens = TokenCache()
    alexa = sink(standin, tokens=tokens, users=[ME])
    alexa.send("build.failed", {**PAYLOAD, "build_id": "b1"})
    standin.revoke_tokens()  # Amazon now answers 403 to the cached token
    (answer,) = alexa.send("build.failed", {**PAYLOAD, "build_id": "b2"})
    assert answer.status == 202 and answer.attempts == 2
    assert [e["status"] for e in standin.events] == [202, 403, 202]
    assert len(standin.token_requests) == 2
    standin.script = [403, 403, 403]  # still refused with a fresh token: give up, no loop
    with pytest.raises(DeliveryFailed, match="HTTP 403"):
        alexa.send("build.failed", {**PAYLOAD, "build_id": "b3"})
    assert [e["status"] for e in standin.events][3:] == [403, 403]


def test_429_and_5xx_are_retried_with_back_off_then_given_up(standin):
    sleeps = []
    standin.script = [429, 429]
    (answer,) = sink(standin, sleeps, users=[ME]).send("build.failed", PAYLOAD)
    assert answer.status == 202 and answer.attempts == 3 and sleeps == [0.5, 1.0]
    sleeps.clear()
    standin.down = True
    with pytest.raises(DeliveryFailed, match="HTTP 503 after 4 attempt"):
        sink(standin, sleeps, users=[ME]).send("build.gate_failed", PAYLOAD)
    assert sleeps == [0.5, 1.0, 2.0]


def test_an_unreachable_api_is_retried_like_a_5xx():
    sleeps = []
    with AlexaStandIn() as lwa:
        alexa = AlexaSink(CLIENT_ID, CLIENT_SECRET, users=[ME], api_url="http://127.0.0.1:9/v1/proactiveEvents",
                          token_url=lwa.token_url, sleep=sleeps.append, tokens=TokenCache(), retries=2)
        with pytest.raises(DeliveryFailed, match="after 3 attempt"):
            alexa.send("build.failed", PAYLOAD)
    assert sleeps == [0.5, 1.0]


def test_a_400_is_logged_with_amazons_message_and_not_retried(standin, caplog):
    sleeps = []
    caplog.set_level(logging.ERROR, logger="lambda_pipeline.alexa_events")
    with pytest.raises(DeliveryFailed, match="relevantAudience.payload.user is not a valid user id"):
        sink(standin, sleeps, users=["someone"]).send("build.failed", PAYLOAD)
    assert [e["status"] for e in standin.events] == [400] and sleeps == []
    assert "Alexa refused the notification (HTTP 400): INVALID_REQUEST: relevantAudience.payload.user" in caplog.text


def test_wrong_client_credentials_are_refused_by_lwa_without_retries(standin):
    alexa = AlexaSink(CLIENT_ID, "wrong", users=[ME], api_url=standin.api_url, token_url=standin.token_url,
                      sleep=lambda s: pytest.fail("no retry on refused credentials"), tokens=TokenCache())
    with pytest.raises(DeliveryFailed, match="invalid_client: Client authentication failed"):
        alexa.send("build.failed", PAYLOAD)
    assert standin.events == []


def test_the_standin_refuses_what_amazon_refuses():
    good = event_body("build.failed", PAYLOAD, {"type": "Unicast", "payload": {"user": ME}}, 1_800_000_000.0)
    assert validate_event(good) is None
    bad = json.loads(json.dumps(good))
    bad["expiryTime"] = bad["timestamp"]
    assert "between 5 minutes and 24 hours" in validate_event(bad)
    bad = {**good, "referenceId": "build-7.failed"}
    assert "referenceId" in validate_event(bad)
    bad = {**good, "localizedAttributes": [{"locale": "en-US"}]}
    assert "lacks ['creatorName']" in validate_event(bad)


def test_reference_ids_keep_amazons_charset_and_length():
    assert reference_id("b1", "build.failed") == "b1~build~failed"
    long = reference_id("x" * 120, "model.rollback_failed")
    assert len(long) == 100 and re.fullmatch(r"[A-Za-z0-9~]+", long)
    assert long != reference_id("x" * 121, "model.rollback_failed")
    assert api_url_for("EU", "live") == "https://api.eu.amazonalexa.com/v1/proactiveEvents"
    assert api_url_for("FE", None) == "https://api.fe.amazonalexa.com/v1/proactiveEvents/stages/development"
    assert api_url_for(None, "development") == "https://api.amazonalexa.com/v1/proactiveEvents/stages/development"


def alexa_config(standin, receiver=None, **extra):
    sinks = [{"type": "alexa", "client_id_env": "SB_ALEXA_ID", "client_secret_env": "SB_ALEXA_SECRET",
              "api_url": standin.api_url, "token_url": standin.token_url, **extra}]
    if receiver is not None:
        sinks.append({"type": "webhook", "url": receiver.url})
    return validate_config({"pipeline": "wine-classifier", "skill": {"allowed_user_ids": [ME, YOU]},
                            "notifications": sinks})


def test_the_local_notifier_delivers_through_the_sink_and_skips_who_opted_out(standin, monkeypatch):
    monkeypatch.setenv("SB_ALEXA_ID", CLIENT_ID)
    monkeypatch.setenv("SB_ALEXA_SECRET", CLIENT_SECRET)
    state = MemoryState()
    Audience(state).record_subscription(YOU, False, "ProactiveSubscriptionChanged")
    config = alexa_config(standin)
    notifier = ConfiguredNotifier(lambda: config, sleep=lambda s: None, state=state)
    notifier.publish("build.started", {**PAYLOAD, "status": "RUNNING"})  # not an alexa event by default
    notifier.publish("build.failed", PAYLOAD)
    assert notifier.flush()
    (body,) = standin.accepted()
    assert body["relevantAudience"]["payload"]["user"] == ME and body["referenceId"] == "b1~build~failed"
    assert notifier.failures == []


def test_the_api_down_costs_the_other_sinks_nothing(standin, monkeypatch):
    monkeypatch.setenv("SB_ALEXA_ID", CLIENT_ID)
    monkeypatch.setenv("SB_ALEXA_SECRET", CLIENT_SECRET)
    standin.down = True
    receiver, sleeps = Receiver(), []
    try:
        config = alexa_config(standin, receiver, retries=2)
        notifier = ConfiguredNotifier(lambda: config, sleep=sleeps.append)
        notifier.publish("build.failed", PAYLOAD)  # returns at once: delivery is in the background
        assert notifier.flush()
        assert [json.loads(b)["event"] for _, b in receiver.received] == ["build.failed"]
        assert [e["status"] for e in standin.events] == [503] * 6  # 2 users x (1 + 2 retries), and no more
        assert sleeps == [0.5, 1.0] * 2
        assert [(kind, event) for kind, event, _ in notifier.failures] == [("alexa", "build.failed")]
    finally:
        receiver.close()


def test_missing_credentials_are_a_logged_failure_not_a_crash(standin, monkeypatch):
    monkeypatch.delenv("SB_ALEXA_ID", raising=False)
    monkeypatch.setenv("SB_ALEXA_SECRET", CLIENT_SECRET)
    config = alexa_config(standin)
    notifier = ConfiguredNotifier(lambda: config, sleep=lambda s: pytest.fail("nothing to retry"))
    notifier.publish("build.failed", PAYLOAD)
    assert notifier.flush()
    ((kind, event, why),) = notifier.failures
    assert kind == "alexa" and "SB_ALEXA_ID" in why and standin.events == []


@pytest.mark.parametrize("sink_spec, message", [
    ({"type": "alexa", "client_secret_env": "S"}, r"'notifications\[0\].client_id_env' is required for an alexa sink"),
    ({"type": "alexa", "client_id_env": "I", "client_secret_env": "S", "stage": "prod"},
     r"'notifications\[0\].stage' must be one of development, live, got 'prod'"),
    ({"type": "alexa", "client_id_env": "I", "client_secret_env": "S", "region": "US"},
     r"'notifications\[0\].region' must be one of NA, EU, FE"),
    ({"type": "alexa", "client_id_env": "I", "client_secret_env": "S", "api_url": "ftp://x"},
     r"'notifications\[0\].api_url' must be an http\(s\) URL"),
    ({"type": "alexa", "client_id_env": "my id", "client_secret_env": "S"},
     r"'notifications\[0\].client_id_env' must name an environment variable"),
    ({"type": "alexa", "client_id_env": "I", "client_secret_env": "S", "url": "http://x"},
     r"'notifications\[0\].url' does not apply to an alexa sink"),
    ({"type": "webhook", "url": "http://x", "stage": "live"}, r"'notifications\[0\].stage' does not apply to a webhook"),
    ({"type": "alexa", "client_id_env": "I", "client_secret_env": "S", "audience": "everyone"},
     r"'notifications\[0\].audience' must be one of unicast, multicast"),
])
def test_the_config_names_what_is_wrong_with_an_alexa_sink(sink_spec, message):
    with pytest.raises(ConfigError, match=message):
        validate_config({"pipeline": "p-1", "notifications": [sink_spec]})


def test_a_valid_alexa_sink_passes_validation():
    config = validate_config({"pipeline": "p-1", "notifications": [
        {"type": "alexa", "client_id_env": "ALEXA_ID", "client_secret_env": "ALEXA_SECRET", "stage": "live",
         "region": "EU", "audience": "multicast", "events": ["build.failed"]}]})
    assert config["notifications"][0]["region"] == "EU"


def test_notify_test_sends_one_notification_and_prints_amazons_answer(standin, monkeypatch, tmp_path):
    from tests.helpers import cli
    monkeypatch.setenv("SB_ALEXA_ID", CLIENT_ID)
    monkeypatch.setenv("SB_ALEXA_SECRET", CLIENT_SECRET)
    sink_spec = {"type": "alexa", "client_id_env": "SB_ALEXA_ID", "client_secret_env": "SB_ALEXA_SECRET",
                 "api_url": standin.api_url, "token_url": standin.token_url, "retries": 0}
    (tmp_path / "sagebuild.json").write_text(json.dumps({"pipeline": "wine-classifier", "notifications": [sink_spec],
                                                         "skill": {"allowed_user_ids": [ME]}}))
    out = cli(tmp_path, "notify-test", "alexa")
    assert out.returncode == 0, out.stderr
    assert f"Unicast to {ME}" in out.stdout and "Unicast: Amazon answered HTTP 202 after 1 attempt(s)" in out.stdout
    (body,) = standin.accepted()
    assert re.fullmatch(r"test\d+~notify~test", body["referenceId"]) and body["relevantAudience"]["payload"]["user"] == ME
    standin.down = True
    down = cli(tmp_path, "notify-test", "alexa")
    assert down.returncode == 1 and "not delivered: Alexa answered HTTP 503" in down.stderr
    assert "SERVICE_UNAVAILABLE: stand-in: the API is down" in down.stderr
    (tmp_path / "sagebuild.json").write_text(json.dumps({"pipeline": "wine-classifier"}))
    none = cli(tmp_path, "notify-test", "alexa")
    assert none.returncode == 2 and "no alexa sink in 'notifications'" in none.stderr


def test_the_engine_api_keeps_the_skills_memory_for_a_skill_served_elsewhere():
    from infrastructure.local.api import ApiServer
    from lambda_pipeline.adapters.local.http_state import HttpState
    from lambda_pipeline.errors import SageBuildError
    state = MemoryState()
    server = ApiServer(None, state=state)
    server.start()
    try:
        remote = HttpState(server.url)
        assert remote.get_state(f"alexa.subscription.{ME}") is None
        Audience(remote).record_subscription(ME, True, "AskFor", ["AMAZON.MessageAlert.Activated"])
        assert Audience(state).subscribed(ME)  # it landed in the engine's store
        assert json.loads(remote.get_state(f"alexa.subscription.{ME}"))["source"] == "AskFor"
        with pytest.raises(SageBuildError, match="HTTP 400"):
            remote.get_state("launch-slot")  # the build service's own state is not reachable
        with pytest.raises(SageBuildError, match="HTTP 400"):
            remote.set_state("triggers.git.seen", "x")
    finally:
        server.stop()
