"""Every intent in every locale through `skill.lambda_handler`, with real envelopes, against a real engine."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import skill.app
from lambda_pipeline.config import LOCAL_SKILL_ID, LOCAL_USER_ID
from skill import lambda_handler
from skill.envelopes import intent_request, launch_request, session_ended_request
from skill.speech import Speech
from sagebuild.voice import spoken_text
from tests.helpers import edit_config

pytestmark = pytest.mark.e2e
LOCALES = ("en-US", "fr-FR", "ja-JP")
STRANGER = "amzn1.ask.account.stranger"

# What each locale must say (fragments of the real answers, in the locale's own words).
EXPECT = {
    "en-US": {"running": ["Build 5 is still running", "training", "started"], "succeeded": ["Build 1 passed", "version 1",
              "percent", "It is live now"], "failed": ["Build 2 failed", "while training",
              "ValueError: learning rate must be positive, got -0.1 (exit code 1)", "The live model is unchanged"],
              "gate": ["did not pass the validation gate", "is below the minimum 0.85"], "stopped": ["Build 4 was stopped"],
              "live": ["Version 1 of wine classifier is live", "by build 1"], "list": ["Your last 5 builds", "build 5 is running",
              "build 4 was stopped", "build 3 did not pass the gate", "build 2 failed", "build 1 passed"],
              "details": ["It was started by the API", "bad learning rate"], "not_found": ["I can't find build 99", "build 5"]},
    "fr-FR": {"running": ["Le build 5 est toujours en cours", "entraînement", "a démarré"], "succeeded": ["Le build 1 a réussi",
              "version 1", "pour cent", "Il est en ligne"], "failed": ["Le build 2 a échoué", "entraînement",
              "learning rate must be positive", "Le modèle en ligne n'a pas changé"], "gate": ["contrôle de validation",
              "is below the minimum 0.85"], "stopped": ["Le build 4 a été arrêté"], "live": ["La version 1 de wine classifier est en ligne",
              "par le build 1"], "list": ["Vos 5 derniers builds", "build 5 en cours", "build 4 arrêté", "build 2 échoué",
              "build 1 réussi"], "details": ["Il a été lancé par l'API", "bad learning rate"],
              "not_found": ["Je ne trouve pas le build 99", "build 5"]},
    "ja-JP": {"running": ["ビルド5番は実行中です", "学習"], "succeeded": ["ビルド1番は", "成功しました", "バージョン1", "パーセント",
              "このモデルが公開中です"], "failed": ["ビルド2番は", "学習の段階で失敗しました", "learning rate must be positive",
              "公開中のモデルは変わっていません"], "gate": ["検証ゲートを通りませんでした", "is below the minimum 0.85"],
              "stopped": ["ビルド4番は", "停止されました"], "live": ["wine classifierのバージョン1が公開中です", "ビルド1番"],
              "list": ["最近の5件のビルドです", "ビルド5番は", "ビルド1番は"], "details": ["APIから開始されました", "bad learning rate"],
              "not_found": ["ビルド99番が見つかりません", "5番"]},
}


@pytest.fixture
def voice(monkeypatch):
    """Calls lambda_handler as Lambda would, configured by environment variables."""
    def configure(engine, users=LOCAL_USER_ID, others="true"):
        monkeypatch.setenv("SAGEBUILD_ENGINE_URL", engine.url if engine else "http://127.0.0.1:9")
        monkeypatch.setenv("SAGEBUILD_ENGINE_TOKEN", engine.token if engine else "")
        monkeypatch.setenv("SKILL_ID", LOCAL_SKILL_ID)
        monkeypatch.setenv("ALLOWED_USER_IDS", users)
        monkeypatch.setenv("OTHERS_CAN_QUERY", others)
        monkeypatch.setenv("PIPELINE_NAME", "wine-classifier")
        monkeypatch.setattr(skill.app, "_default", None)

    def ask(intent, slots=None, locale="en-US", **kwargs):
        if intent == "LaunchRequest":
            response = lambda_handler(launch_request(locale, **kwargs), None)
        elif intent == "SessionEndedRequest":
            response = lambda_handler(session_ended_request(locale), None)
        else:
            response = lambda_handler(intent_request(intent, slots, locale, **kwargs), None)
        return response

    ask.configure = configure
    return ask


def said(response):
    return spoken_text(response)


def ends(response):
    return response["response"].get("shouldEndSession") is not False


@pytest.mark.parametrize("locale", LOCALES)
def test_status_answers_for_every_kind_of_build(populated, voice, locale):
    voice.configure(populated)
    expect = EXPECT[locale]
    cases = {"running": None, "succeeded": 1, "failed": 2, "gate": 3, "stopped": 4, "not_found": 99}
    for case, number in cases.items():
        response = voice("BuildStatusIntent", {"BuildNumber": number} if number else None, locale)
        text = said(response)
        for fragment in expect[case]:
            assert fragment in text, (case, text)
        assert ends(response), case  # one-shot: answer and end
        assert len(text) < 400


@pytest.mark.parametrize("locale", LOCALES)
def test_details_live_and_list(populated, voice, locale):
    voice.configure(populated)
    expect = EXPECT[locale]
    details = said(voice("BuildDetailsIntent", {"BuildNumber": 2}, locale))
    for fragment in expect["failed"] + expect["details"]:
        assert fragment in details
    live = said(voice("LiveModelIntent", None, locale))
    for fragment in expect["live"]:
        assert fragment in live
    listed = said(voice("ListBuildsIntent", None, locale))
    for fragment in expect["list"]:
        assert fragment in listed


@pytest.mark.parametrize("locale", LOCALES)
def test_conversation_intents(populated, voice, locale):
    voice.configure(populated)
    speech = Speech(locale)
    launch = voice("LaunchRequest", locale=locale)
    assert said(launch) == speech.raw("WELCOME") and not ends(launch)
    assert speech.raw("WELCOME_REPROMPT") in json.dumps(launch["response"]["reprompt"], ensure_ascii=False)
    help_ = voice("AMAZON.HelpIntent", None, locale, new_session=False)
    assert said(help_) == speech.raw("HELP") and not ends(help_)
    home = voice("AMAZON.NavigateHomeIntent", None, locale, new_session=False)
    assert said(home) == speech.raw("WELCOME") and not ends(home)
    fallback = voice("AMAZON.FallbackIntent", None, locale, new_session=False)
    assert said(fallback) == speech.raw("FALLBACK") and not ends(fallback)
    in_session = voice("BuildStatusIntent", None, locale, new_session=False)
    assert not ends(in_session)  # inside a conversation the session stays open
    assert speech.raw("ANYTHING_ELSE") in json.dumps(in_session["response"]["reprompt"], ensure_ascii=False)
    for intent in ("AMAZON.StopIntent", "AMAZON.CancelIntent"):
        bye = voice(intent, None, locale, new_session=False)
        assert said(bye) == speech.raw("GOODBYE") and ends(bye)
    assert populated.build(5)["status"] == "RUNNING"  # Stop and Cancel never stop a build
    nothing = voice("AMAZON.YesIntent", None, locale, new_session=False)
    assert said(nothing) == speech.raw("NOTHING_TO_CONFIRM")
    assert voice("SessionEndedRequest", None, locale)["response"].get("outputSpeech") is None


def test_users_not_allowed_cannot_act_but_may_ask(populated, voice):
    voice.configure(populated)
    refused = said(voice("StopBuildIntent", None, "en-US", user_id=STRANGER))
    assert refused == Speech("en-US").raw("NOT_ALLOWED")
    assert said(voice("StartBuildIntent", None, "fr-FR", user_id=STRANGER)) == Speech("fr-FR").raw("NOT_ALLOWED")
    assert "Build 5 is still running" in said(voice("BuildStatusIntent", None, "en-US", user_id=STRANGER))
    voice.configure(populated, others="false")
    assert said(voice("BuildStatusIntent", None, "ja-JP", user_id=STRANGER)) == Speech("ja-JP").raw("NOT_ALLOWED_QUERY")
    assert populated.build(5)["status"] == "RUNNING"


def test_wrong_skill_id_is_rejected_without_an_answer(populated, voice):
    voice.configure(populated)
    response = voice("BuildStatusIntent", None, "en-US", skill_id="amzn1.ask.skill.other")
    assert response == {"version": "1.0", "response": {"shouldEndSession": True}}


def test_pipeline_slot_for_another_pipeline(populated, voice):
    voice.configure(populated)
    known = said(voice("BuildStatusIntent", {"Pipeline": {"value": "wine model", "id": "wine-classifier"}}))
    assert "Build 5 is still running" in known
    other = said(voice("BuildStatusIntent", {"Pipeline": "fraud detector"}))
    assert other == "I only know the wine classifier pipeline."


@pytest.mark.parametrize("locale", LOCALES)
def test_failures_inside_handlers_become_an_apology(voice, locale):
    voice.configure(None)  # nothing listens there: every port call fails
    response = voice("BuildStatusIntent", None, locale)
    assert said(response) == Speech(locale).raw("ENGINE_DOWN") and ends(response)
    unknown = voice("NoSuchIntent", None, locale)
    assert said(unknown) == Speech(locale).raw("ERROR")


def test_progressive_response_is_sent_and_never_fails_the_request(populated, voice, monkeypatch, tmp_path):
    import ipaddress
    import ssl

    from tests.pki import make_ca, make_leaf, pem
    from cryptography.hazmat.primitives import serialization

    voice.configure(populated)
    received = []
    ca_key, ca = make_ca()
    key, cert = make_leaf(ca_key, ca, san="localhost", ip=ipaddress.ip_address("127.0.0.1"))
    (tmp_path / "ca.pem").write_bytes(pem(ca))
    (tmp_path / "server.pem").write_bytes(pem(cert) + key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "ca.pem"))  # Alexa's API endpoint is HTTPS

    class Directives(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.path, json.loads(self.rfile.read(int(self.headers["Content-Length"]))),
                             self.headers["Authorization"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Directives)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "server.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        endpoint = f"https://127.0.0.1:{server.server_address[1]}"
        response = voice("BuildStatusIntent", None, "fr-FR", api_endpoint=endpoint, api_token="tok")
        assert "Le build 5 est toujours en cours" in said(response)
        path, body, auth = received[0]
        assert path == "/v1/directives" and auth == "Bearer tok"
        assert body["directive"] == {"type": "VoicePlayer.Speak", "speech": "Je consulte vos builds."}
    finally:
        server.shutdown()
    broken = voice("BuildStatusIntent", None, "en-US", api_endpoint="https://127.0.0.1:9", api_token="tok")
    assert "Build 5 is still running" in said(broken)


def test_no_builds_yet_says_how_to_start_one(empty_engine, voice):
    voice.configure(empty_engine)
    for locale in LOCALES:
        assert said(voice("BuildStatusIntent", None, locale)) == Speech(locale).raw("NO_BUILDS")
        assert said(voice("LiveModelIntent", None, locale)) == Speech(locale).raw("NO_LIVE_MODEL")
        assert said(voice("StopBuildIntent", None, locale)) == Speech(locale).raw("STOP_NOTHING")


@pytest.mark.parametrize("locale", LOCALES)
def test_start_then_stop_with_confirmation(empty_engine, voice, locale):
    voice.configure(empty_engine)
    speech = Speech(locale)
    started = said(voice("StartBuildIntent", None, locale))
    assert started == speech.say("START_STARTED", number=1)
    build = empty_engine.build(1)
    assert build["trigger_source"] == "voice" and build["status"] == "RUNNING"
    queued = said(voice("StartBuildIntent", None, locale))
    assert queued == speech.say("START_QUEUED", number=2, running=1)
    empty_engine.wait_build(1, step="Train")
    ask = voice("StopBuildIntent", {"BuildNumber": 1}, locale)
    assert said(ask) == speech.plain("STOP_CONFIRM", number=1, step=speech.step("Train")) and not ends(ask)
    assert empty_engine.build(1)["status"] == "RUNNING"  # nothing happens before yes
    no = voice("AMAZON.NoIntent", None, locale, new_session=False, attributes=ask["sessionAttributes"])
    assert said(no) == speech.say("STOP_KEEP", number=1) and empty_engine.build(1)["status"] == "RUNNING"
    ask = voice("StopBuildIntent", None, locale)  # no number: the running build
    yes = voice("AMAZON.YesIntent", None, locale, new_session=False, attributes=ask["sessionAttributes"])
    assert said(yes) == speech.say("STOP_DONE", number=1) and ends(yes)
    assert empty_engine.build(1)["status"] == "ABORTED"
    again = voice("StopBuildIntent", {"BuildNumber": 1}, locale)
    assert said(again) == speech.say("STOP_ALREADY_ENDED", number=1)
    empty_engine.api("POST", "/v1/builds/2/stop", {})


def test_start_is_refused_when_the_pipeline_runs_one_build_at_a_time(empty_engine, voice):
    voice.configure(empty_engine)
    edit_config(empty_engine.project, builds={"when_running": "refuse"})
    assert said(voice("StartBuildIntent")) == "Started build 1. Ask me later whether it's done."
    refused = said(voice("StartBuildIntent"))
    assert refused.startswith("Build 1 is still running, and this pipeline runs one build at a time")
    empty_engine.api("POST", "/v1/builds/1/stop", {})
