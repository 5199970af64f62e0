"""Notifications through the skill's `lambda_handler` on the AWS adapters (moto): subscription events,
the notification permission asked by voice, and "since you last asked" in en-US, fr-FR and ja-JP;
then the stack's notify function reading who opted out, sending to a STAND-IN of Amazon's APIs."""
import datetime as dt
import json
import time
import uuid

import boto3
import pytest
from moto import mock_aws

import skill.app
from lambda_pipeline import alexa_entry
from lambda_pipeline.adapters.aws.dynamodb_ledger import DynamoDBLedger
from lambda_pipeline.audience import Audience
from lambda_pipeline.model import BuildStatus
from sagebuild.voice import spoken_text
from skill.envelopes import intent_request, launch_request
from skill.notify_handlers import ASK_FOR_TOKEN, NOTIFICATIONS_SCOPE
from skill.speech import Speech
from tests.functional.alexa_standin import CLIENT_ID, CLIENT_SECRET, AlexaStandIn

REGION, SKILL = "us-east-1", "amzn1.ask.skill.notify-test"
ME, YOU, STRANGER = "amzn1.ask.account.me", "amzn1.ask.account.you", "amzn1.ask.account.stranger"
LOCALES = ("en-US", "fr-FR", "ja-JP")
ENDPOINT = "sim-endpoint"


def config(sinks=(), endpoint=ENDPOINT):
    return {"pipeline": "sim", "deploy": {"endpoint": endpoint}, "skill": {"skill_id": SKILL, "allowed_user_ids": [ME]},
            "notifications": [{"type": "console"}, *sinks]}


@pytest.fixture(scope="module")
def account():
    """One moto account for the module (moto's first call per service costs seconds)."""
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        mp.setenv("AWS_DEFAULT_REGION", REGION)
        yield


@pytest.fixture
def stack(account, monkeypatch):
    """What the skill function reads, fresh per test: ledger table, config, endpoint name."""
    suffix = uuid.uuid4().hex[:8]
    table, endpoint = f"sim-ledger-{suffix}", f"sim-endpoint-{suffix}"
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    boto3.client("ssm", region_name=REGION).put_parameter(Name="/sagebuild/sim/config", Type="String", Overwrite=True,
                                                          Value=json.dumps(config(endpoint=endpoint)))
    env = {"SAGEBUILD_ARTIFACTS_BUCKET": "sim-artifacts", "SAGEBUILD_TRAINING_IMAGE": "img",
           "SAGEBUILD_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/sim", "SAGEBUILD_CONFIG_PARAMETER":
           "/sagebuild/sim/config", "SAGEBUILD_LEDGER_TABLE": table, "SAGEBUILD_STATUS_TOPIC":
           "arn:aws:sns:us-east-1:123456789012:sim-status", "SAGEBUILD_STATE_MACHINE":
           "arn:aws:states:us-east-1:123456789012:stateMachine:sim-build",
           "SKILL_ID": SKILL, "ALLOWED_USER_IDS": f"{ME},{YOU}", "PIPELINE_NAME": "sim"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(skill.app, "_default", None)
    alexa_entry.forget_cached()
    ledger = DynamoDBLedger(table)
    ledger.endpoint = endpoint
    yield ledger, env
    alexa_entry.forget_cached()


def go_live(ledger, build, version):
    sm = boto3.client("sagemaker", region_name=REGION)
    name = f"{ledger.endpoint}-{version}"
    sm.create_model(ModelName=name, ExecutionRoleArn="arn:aws:iam::123456789012:role/sim",
                    PrimaryContainer={"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sk:1"})
    sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": name, "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium"}])
    try:
        sm.create_endpoint(EndpointName=ledger.endpoint, EndpointConfigName=name)
    except sm.exceptions.ClientError:
        sm.update_endpoint(EndpointName=ledger.endpoint, EndpointConfigName=name)
    ledger.record_deployment(ledger.endpoint, version, name, build.id)


def finish(ledger, status, reason=None, step="Train", version=None):
    build = ledger.create_build("sim", "git", "a change")
    ledger.update_build(build.id, status=BuildStatus.RUNNING, started_at=time.time(), version=version)
    ledger.begin_step(build.id, step)
    return ledger.finish_build(build.id, status, reason=reason, error_type="AlgorithmError" if reason else None)


def skill_event(kind, user, locale, body=None):
    request = {"type": kind, "requestId": f"amzn1.echo-api.request.{uuid.uuid4()}", "locale": locale,
               "timestamp": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "eventCreationTime": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
    if body is not None:
        request["body"] = body
    return {"version": "1.0", "context": {"System": {"application": {"applicationId": SKILL}, "user": {"userId": user},
                                                     "apiEndpoint": "https://api.amazonalexa.com"}},
            "request": request}


def connections_response(user, locale, answer, code="200"):
    envelope = intent_request("AMAZON.HelpIntent", locale=locale, skill_id=SKILL, user_id=user, new_session=False)
    envelope["request"] = {"type": "Connections.Response", "requestId": envelope["request"]["requestId"],
                           "timestamp": envelope["request"]["timestamp"], "locale": locale, "name": "AskFor",
                           "status": {"code": code, "message": "OK" if code == "200" else "Bad Request"},
                           "payload": {"permissionScope": NOTIFICATIONS_SCOPE, "status": answer},
                           "token": ASK_FOR_TOKEN}
    return envelope


def ask(intent, locale, user=ME, slots=None, permissions=None):
    envelope = intent_request(intent, slots, locale, skill_id=SKILL, user_id=user)
    if permissions is not None:
        envelope["context"]["System"]["user"]["permissions"] = permissions
    return skill.app.lambda_handler(envelope, None)


@pytest.mark.parametrize("locale", LOCALES)
def test_subscription_and_enable_events_record_who_opted_in_and_out(stack, locale):
    ledger, _ = stack
    audience = Audience(ledger)
    subscribed = {"subscriptions": [{"eventName": "AMAZON.MessageAlert.Activated"}]}
    answer = skill.app.lambda_handler(skill_event("AlexaSkillEvent.ProactiveSubscriptionChanged", ME, locale,
                                                  subscribed), None)
    assert "outputSpeech" not in answer["response"]  # nobody is listening to a skill event
    assert audience.subscribed(ME) and not audience.opted_out(ME)
    assert json.loads(ledger.get_state(f"alexa.subscription.{ME}"))["source"] == "ProactiveSubscriptionChanged"
    skill.app.lambda_handler(skill_event("AlexaSkillEvent.ProactiveSubscriptionChanged", ME, locale,
                                         {"subscriptions": []}), None)
    assert audience.opted_out(ME) and not audience.subscribed(ME)
    skill.app.lambda_handler(skill_event("AlexaSkillEvent.SkillEnabled", YOU, locale), None)
    assert not audience.opted_out(YOU) and audience.heard("sim", YOU).at is not None
    skill.app.lambda_handler(skill_event("AlexaSkillEvent.SkillDisabled", YOU, locale), None)
    assert audience.opted_out(YOU)
    wrong = skill_event("AlexaSkillEvent.SkillEnabled", STRANGER, locale)
    wrong["context"]["System"]["application"]["applicationId"] = "amzn1.ask.skill.other"
    assert skill.app.lambda_handler(wrong, None) == {"version": "1.0", "response": {"shouldEndSession": True}}
    assert audience.subscription(STRANGER) is None


@pytest.mark.parametrize("locale", LOCALES)
def test_notify_me_asks_for_the_permission_by_voice_then_confirms(stack, locale):
    ledger, _ = stack
    speech = Speech(locale)
    asked = ask("NotifyMeIntent", locale)
    assert spoken_text(asked) == speech.raw("NOTIFY_ASK_PERMISSION")
    (directive,) = asked["response"]["directives"]
    assert directive == {"type": "Connections.SendRequest", "name": "AskFor", "token": ASK_FOR_TOKEN, "payload": {
        "@type": "AskForPermissionsConsentRequest", "@version": "2",
        "permissionScopes": [{"permissionScope": "alexa::devices:all:notifications:write", "consentLevel": "ACCOUNT"}]}}
    assert asked["response"]["shouldEndSession"] is True and "reprompt" not in asked["response"]

    accepted = skill.app.lambda_handler(connections_response(ME, locale, "ACCEPTED"), None)
    assert spoken_text(accepted) == speech.raw("NOTIFY_CONFIRM")
    assert Audience(ledger).subscribed(ME)
    again = ask("NotifyMeIntent", locale)  # the ledger knows now: no second question
    assert spoken_text(again) == speech.raw("NOTIFY_CONFIRM") and "directives" not in again["response"]

    running = ledger.create_build("sim", "git", "a change")
    ledger.update_build(running.id, status=BuildStatus.RUNNING, started_at=time.time())
    granted = ask("NotifyMeIntent", locale, user=ME, permissions={"scopes": {NOTIFICATIONS_SCOPE: {"status": "GRANTED"}}})
    assert spoken_text(granted) == speech.say("NOTIFY_CONFIRM_RUNNING", number=running.number)
    denied_now = ask("NotifyMeIntent", locale, permissions={"scopes": {NOTIFICATIONS_SCOPE: {"status": "DENIED"}}})
    assert denied_now["response"]["directives"][0]["name"] == "AskFor"  # the request says no: ask again


@pytest.mark.parametrize("locale, answer, code", [("en-US", "DENIED", "200"), ("fr-FR", "NOT_ANSWERED", "200"),
                                                  ("ja-JP", "ACCEPTED", "400")])
def test_no_voice_consent_falls_back_to_the_card(stack, locale, answer, code):
    response = skill.app.lambda_handler(connections_response(ME, locale, answer, code), None)
    assert spoken_text(response) == Speech(locale).raw("NOTIFY_PERMISSION_CARD")
    assert response["response"]["card"] == {"type": "AskForPermissionsConsent", "permissions": [NOTIFICATIONS_SCOPE]}
    assert not Audience(stack[0]).subscribed(ME)


def test_people_the_pipeline_does_not_list_are_told_who_gets_notifications(stack, monkeypatch):
    monkeypatch.setenv("ALLOWED_USER_IDS", ME)
    for locale in LOCALES:
        response = ask("NotifyMeIntent", locale, user=STRANGER)
        assert spoken_text(response) == spoken_text({"response": {"outputSpeech": {"ssml": Speech(locale).say(
            "NOTIFY_NOT_LISTED", pipeline="sim")}}})
        assert "directives" not in response["response"]


EXPECT = {
    "en-US": ["Since you last asked: build 3 failed while training: ValueError: learning rate must be positive",
              "build 2 passed and made version 2", "Version 2 is live now.", "Welcome to Sage Build."],
    "fr-FR": ["Depuis votre dernière question : le build 3 a échoué à l'étape entraînement : ValueError",
              "le build 2 a réussi et a produit la version 2", "La version 2 est en ligne maintenant.",
              "Bienvenue dans Sage Build."],
    "ja-JP": ["前回お知らせしてから、ビルド3番は学習の段階で失敗しました。理由はValueError",
              "ビルド2番は成功し、バージョン2ができました", "今はバージョン2が公開中です。", "セージビルドへようこそ。"],
}
LATER = {"en-US": ("build 5 was stopped", "build 4"), "fr-FR": ("le build 5 a été arrêté", "build 4"),
         "ja-JP": ("ビルド5番は停止されました", "ビルド4番")}


@pytest.mark.parametrize("locale", LOCALES)
def test_opening_the_skill_says_what_ended_since_the_user_last_heard(stack, locale):
    ledger, _ = stack
    speech = Speech(locale)
    old = finish(ledger, BuildStatus.SUCCEEDED, step="Notify", version="v1")
    go_live(ledger, old, "v1")
    first = skill.app.lambda_handler(launch_request(locale, skill_id=SKILL, user_id=ME), None)
    assert spoken_text(first) == speech.raw("WELCOME")  # first time: nothing to catch up on
    assert first["response"]["shouldEndSession"] is False

    good = finish(ledger, BuildStatus.SUCCEEDED, step="Notify", version="v2")
    go_live(ledger, good, "v2")
    finish(ledger, BuildStatus.FAILED, reason="ValueError: learning rate must be positive\ntraceback...")
    summary = spoken_text(skill.app.lambda_handler(launch_request(locale, skill_id=SKILL, user_id=ME), None))
    positions = [summary.index(fragment) for fragment in EXPECT[locale]]
    assert positions == sorted(positions), summary  # newest first, what is live, then the welcome
    assert summary.endswith(speech.raw("WELCOME")) and "build 1" not in summary.lower() and "1番" not in summary
    assert "traceback" not in summary  # the first line of the reason only
    again = skill.app.lambda_handler(launch_request(locale, skill_id=SKILL, user_id=ME), None)
    assert spoken_text(again) == speech.raw("WELCOME")  # heard: not repeated
    if locale != "en-US":
        return  # the rest does not depend on the language (moto's calls are slow: keep the suite fast)

    gate = finish(ledger, BuildStatus.GATE_FAILED, reason="validation:accuracy 0.61 is below the minimum 0.85",
                  step="Evaluate")
    running = ledger.create_build("sim", "git", "a change")
    ledger.update_build(running.id, status=BuildStatus.RUNNING, started_at=time.time())
    ask("BuildStatusIntent", locale, slots={"BuildNumber": gate.number})  # asking about build 4 marks it heard
    ask("BuildStatusIntent", locale)  # ...but hearing that build 5 still runs does not mark how it ends
    ledger.finish_build(running.id, BuildStatus.ABORTED, reason="stopped by a user", error_type="Stopped")
    later = spoken_text(skill.app.lambda_handler(launch_request(locale, skill_id=SKILL, user_id=ME), None))
    said, not_said = LATER[locale]
    assert said in later and not_said not in later, later
    # somebody else has their own memory: they meet the skill now, so no summary for them
    other = skill.app.lambda_handler(launch_request(locale, skill_id=SKILL, user_id=YOU), None)
    assert spoken_text(other) == speech.raw("WELCOME")


def test_the_stacks_notify_function_skips_who_opted_out_and_reads_its_secret_once(stack):
    ledger, env = stack
    with AlexaStandIn() as amazon:
        sink = {"type": "alexa", "client_id_env": "UNUSED_ON_AWS", "client_secret_env": "UNUSED_ON_AWS",
                "api_url": amazon.api_url, "token_url": amazon.token_url}
        boto3.client("ssm", region_name=REGION).put_parameter(Name="/sagebuild/sim/config", Type="String",
                                                              Value=json.dumps(config([sink], ledger.endpoint)),
                                                              Overwrite=True)
        arn = boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name="sim-alexa", SecretString=CLIENT_SECRET)["ARN"]
        session = boto3.session.Session(region_name=REGION)
        reads = []
        session.events.register("before-call.secrets-manager.GetSecretValue", lambda **kw: reads.append(1))
        fn_env = {**env, "SAGEBUILD_ALEXA_CLIENT_ID": CLIENT_ID, "SAGEBUILD_ALEXA_CLIENT_SECRET": arn}
        skill.app.lambda_handler(skill_event("AlexaSkillEvent.SkillDisabled", YOU, "en-US"), None)  # YOU opts out
        build = finish(ledger, BuildStatus.FAILED, reason="boom")

        def sns(event):
            message = json.dumps({"event": event, "payload": {"build_id": build.id, "pipeline": "sim",
                                                               "build_number": build.number}})
            return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": message}}]}

        first = alexa_entry.notify(sns("build.failed"), None, env=fn_env, session=session)
        assert first == {"delivered": [{"event": "build.failed", "status": 202,
                                        "reference": f"{build.id}~build~failed"}], "failed": []}
        (body,) = amazon.accepted()
        assert body["relevantAudience"] == {"type": "Unicast", "payload": {"user": ME}}
        assert body["event"]["payload"]["messageGroup"]["urgency"] == "URGENT"
        assert alexa_entry.notify(sns("build.started"), None, env=fn_env, session=session)["delivered"] == []
        amazon.down = True
        down = alexa_entry.notify(sns("build.gate_failed"), None, env=fn_env, session=session,
                                  sleep=lambda s: None)  # never raises: Lambda must not run it again
        assert down["delivered"] == [] and "HTTP 503" in down["failed"][0]["error"]
        assert len(reads) == 1  # the secret is read once per container
        assert len(amazon.token_requests) == 1


def test_the_manifest_declares_the_permission_the_publication_and_the_subscriptions():
    from tests.helpers import REPO
    manifest = json.loads((REPO / "interaction_model" / "skill.json").read_text(encoding="utf-8"))["manifest"]
    assert {"name": NOTIFICATIONS_SCOPE} in manifest["permissions"]
    assert manifest["events"]["publications"] == [{"eventName": "AMAZON.MessageAlert.Activated"}]
    assert {s["eventName"] for s in manifest["events"]["subscriptions"]} == {
        "SKILL_PROACTIVE_SUBSCRIPTION_CHANGED", "SKILL_ENABLED", "SKILL_DISABLED"}
    assert manifest["events"]["endpoint"] == manifest["apis"]["custom"]["endpoint"]  # skill-package sets both
