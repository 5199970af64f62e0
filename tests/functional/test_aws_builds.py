"""The Lambda entries around the Builds port on Step Functions, in the simulated account: async
rollback, launch sources, the git webhook with its Secrets Manager secret, image builds on
CodeBuild, the skill on Lambda. (Start, queue, coalesce, refuse, stop and execution-ended events
are in the behaviour suite, test_builds_behaviour.py, which runs them locally and here.)"""
import dataclasses
import hashlib
import hmac
import io
import json
import time
import zipfile

import boto3
import pytest
from botocore.stub import ANY, Stubber

from lambda_pipeline import lambda_entry
from lambda_pipeline.adapters.aws import SageMakerHosting
from lambda_pipeline.adapters.aws.sfn_builds import StepFunctionsBuilds
from lambda_pipeline.definition import render_definition
from tests.functional.aws_sim import IMAGE, REGION, ROLE, aws, config, notifications, wait_for  # noqa: F401


def builds_of(arn, ports):
    return StepFunctionsBuilds(ports, arn)


def finished(ports, build_id):
    return wait_for(lambda: (b := ports.ledger.get_build(build_id)).done and b)


def test_rollback_returns_at_once_and_the_endpoint_event_records_it(aws):
    engine, arn, ports, sqs, queue, _ = aws
    ledger = ports.ledger
    for version, at in (("v1", 100.0), ("v2", 200.0)):
        build = ledger.create_build("sim", "api", f"build of {version}")
        ledger.register_model(version, build.id, f"s3://sim-artifacts/{version}/model.tar.gz",
                              "s3://sim-artifacts/code/model/sourcedir.tar.gz", {"validation:accuracy": 0.9}, config())
        ledger.record_deployment("sim-endpoint", version, f"sim-{version}-{build.id[:6]}", build.id)
    # moto has no UpdateEndpoint: the hosting adapter's client is stubbed, every request checked.
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    hosting = SageMakerHosting(ROLE, IMAGE, boto3_client=sagemaker)
    builds = builds_of(arn, dataclasses.replace(ports, hosting=hosting))
    assert builds.plan_rollback() == {"endpoint": "sim-endpoint", "pipeline": "sim", "from": "v2", "to": "v1"}
    with Stubber(sagemaker) as stubber:
        stubber.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:123456789012:model/sim-v1"}, {
            "ModelName": "sim-v1", "ExecutionRoleArn": ROLE, "PrimaryContainer": {
                "Image": IMAGE, "ModelDataUrl": "s3://sim-artifacts/v1/model.tar.gz", "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "s3://sim-artifacts/code/model/sourcedir.tar.gz"}}})
        stubber.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint-config/x"},
                             {"EndpointConfigName": ANY, "ProductionVariants": ANY})
        stubber.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:123456789012:endpoint/sim-endpoint"},
                             {"EndpointName": "sim-endpoint", "EndpointConfigName": ANY, "DeploymentConfig": ANY})
        started = time.monotonic()
        info = builds.rollback()
        elapsed = time.monotonic() - started
    assert info.status == "Updating" and info.model_version == "v1" and elapsed < 8  # within Alexa's 8 s
    assert info.endpoint_config.startswith("sim-v1-rollback-")
    assert ledger.live_deployment("sim-endpoint")["version"] == "v2"  # not yet: the swap goes on
    event = {"source": "aws.sagemaker", "detail-type": "SageMaker Endpoint State Change",
             "detail": {"EndpointName": "sim-endpoint", "EndpointStatus": "IN_SERVICE",  # as SageMaker's events spell it
                        "EndpointConfigName": info.endpoint_config}}
    assert lambda_entry.state_change(event) == {"rollback": "recorded"}
    live = ledger.live_deployment("sim-endpoint")
    assert live["version"] == "v1" and live["kind"] == "rollback" and live["endpoint_config"] == info.endpoint_config
    assert lambda_entry.state_change(event) == {"rollback": None}  # delivered twice: recorded once
    assert [d["version"] for d in ledger.deployments("sim-endpoint")] == ["v1", "v2", "v1"]
    (message,) = notifications(sqs, queue)
    assert message["event"] == "model.rolled_back"
    assert (message["payload"]["from_version"], message["payload"]["to_version"]) == ("v2", "v1")
    # A build's own deployment is not mistaken for a rollback:
    plain = dict(event, detail={**event["detail"], "EndpointConfigName": "sim-v2-abcdef"})
    assert lambda_entry.state_change(plain) == {"rollback": None}


def test_a_failed_rollback_is_reported_and_changes_nothing(aws):
    engine, arn, ports, sqs, queue, _ = aws
    ledger = ports.ledger
    build = ledger.create_build("sim", "api", "v1")
    ledger.register_model("v1", build.id, "s3://a/model.tar.gz", None, {}, config())
    ledger.record_deployment("sim-endpoint", "v1", "sim-v1-aaaaaa", build.id)
    result = lambda_entry.state_change({"source": "aws.sagemaker", "detail": {
        "EndpointName": "sim-endpoint", "EndpointStatus": "FAILED", "EndpointConfigName": "sim-v0-rollback-1",
        "FailureReason": "the container did not pass the ping health check"}})
    assert result == {"rollback": "failed"}
    assert ledger.live_deployment("sim-endpoint")["version"] == "v1"
    (message,) = notifications(sqs, queue)
    assert message["event"] == "model.rollback_failed"
    assert message["payload"]["reason"] == "the container did not pass the ping health check"


def test_launch_starts_builds_from_s3_the_launch_topic_codecommit_and_the_schedule(aws):
    engine, arn, ports, *_ = aws
    s3_event = {"Records": [{"eventSource": "aws:s3", "s3": {"bucket": {"name": "sim-data"},
                                                             "object": {"key": "data/train/new+rows.csv"}}}]}
    answer = lambda_entry.launch(s3_event)
    assert answer["status"] == "RUNNING" and answer["reason"] == "new data: s3://sim-data/data/train/new rows.csv"
    first = ports.ledger.get_build(answer["build"])
    sns_event = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps({"reason": "retrain please"})}},
                             {"EventSource": "aws:sns", "Sns": {"Message": "plain text works too"}}]}
    queued = lambda_entry.launch(sns_event)
    if ports.ledger.get_build(first.id).done:  # the first may have finished already
        assert queued["status"] in ("RUNNING", "SUCCEEDED")
    else:
        assert queued["status"] == "QUEUED"
    assert queued["reason"] == "2 triggers: launch: retrain please; launch: plain text works too"
    build = ports.ledger.get_build(queued["build"])
    assert [t["source"] for t in ports.ledger.triggers_of(build.id)] == ["launch", "launch"]
    finished(ports, first.id)
    builds_of(arn, ports).launch_next()  # what the first one's end event does on AWS
    finished(ports, build.id)
    pushed = lambda_entry.launch({"source": "aws.codecommit", "detail-type": "CodeCommit Repository State Change",
                                  "detail": {"event": "referenceUpdated", "repositoryName": "wine",
                                             "referenceType": "branch", "referenceName": "main",
                                             "commitId": "89abcdef01234567"}})
    assert pushed["reason"] == "push of 89abcdef to main (wine)"
    (trigger,) = ports.ledger.triggers_of(ports.ledger.get_build(pushed["build"]).id)
    assert trigger["source"] == "git" and trigger["details"]["commit"] == "89abcdef01234567"
    finished(ports, ports.ledger.get_build(pushed["build"]).id)
    scheduled = lambda_entry.launch({"source": "schedule", "reason": "scheduled build"})
    assert ports.ledger.get_build(scheduled["build"]).trigger_source == "schedule"
    with pytest.raises(ValueError, match="not a launch event"):
        lambda_entry.launch({"hello": "world"})


@pytest.fixture
def webhook_secret(aws, monkeypatch):
    secret = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="sim-webhook", SecretString="s3cr3t-from-secrets-manager")
    monkeypatch.setenv("SAGEBUILD_WEBHOOK_SECRET", secret["ARN"])
    monkeypatch.setenv("SAGEBUILD_TRIGGER_BRANCH", "main")
    return b"s3cr3t-from-secrets-manager"


def http_event(body, secret=None, event="push", signature=None, b64=False):
    raw = json.dumps(body).encode()
    headers = {"X-GitHub-Event": event, "Content-Type": "application/json"}
    if secret is not None:
        headers["X-Hub-Signature-256"] = "sha256=" + hmac.new(secret, raw, hashlib.sha256).hexdigest()
    if signature is not None:
        headers["X-Hub-Signature-256"] = signature
    import base64
    return {"version": "2.0", "headers": {k.lower(): v for k, v in headers.items()},
            "body": base64.b64encode(raw).decode() if b64 else raw.decode(), "isBase64Encoded": b64}


PUSH = {"ref": "refs/heads/main", "after": "0123456789abcdef",
        "head_commit": {"id": "0123456789abcdef", "message": "deeper trees\n\nbody"},
        "repository": {"full_name": "team/wine"}}


def test_the_webhook_verifies_the_signature_with_the_secret_from_secrets_manager(aws, webhook_secret):
    engine, arn, ports, *_ = aws
    ok = lambda_entry.webhook(http_event(PUSH, webhook_secret, b64=True))
    assert ok["statusCode"] == 202, ok
    body = json.loads(ok["body"])
    assert body["reason"] == "push of 01234567 to main: deeper trees"
    (trigger,) = ports.ledger.triggers_of(ports.ledger.get_build(body["build"]).id)
    assert trigger["source"] == "git" and trigger["details"]["commit"] == "0123456789abcdef"
    assert trigger["details"]["repository"] == "team/wine"
    for bad in (http_event(PUSH), http_event(PUSH, b"wrong secret"), http_event(PUSH, signature="sha256=00")):
        answer = lambda_entry.webhook(bad)
        assert answer["statusCode"] == 401, answer
    assert "missing X-Hub-Signature-256" in json.loads(lambda_entry.webhook(http_event(PUSH))["body"])["error"]
    other_branch = dict(PUSH, ref="refs/heads/feature")
    assert lambda_entry.webhook(http_event(other_branch, webhook_secret))["statusCode"] == 202
    assert lambda_entry.webhook(http_event({"zen": "hi"}, webhook_secret, event="ping"))["statusCode"] == 202
    assert len(ports.ledger.list_builds(10)) == 1  # neither started a build
    raw = {"version": "2.0", "headers": {}, "body": "not json", "isBase64Encoded": False}
    raw["headers"]["x-hub-signature-256"] = "sha256=" + hmac.new(webhook_secret, b"not json", hashlib.sha256).hexdigest()
    answer = lambda_entry.webhook(raw)
    assert answer["statusCode"] == 400 and "not JSON" in json.loads(answer["body"])["error"]


def image_build_account(aws, monkeypatch):
    """The simulated account with a CodeBuild project, the image source in S3 and ``image.build`` on:
    (codebuild client, image repository, ports with the image builder, state machine ARN)."""
    engine, _, ports, sqs, queue, ssm = aws
    codebuild = boto3.client("codebuild", region_name=REGION)
    codebuild.create_project(name="sim-images", source={"type": "S3", "location": "sim-artifacts/code/image-source.zip"},
                             artifacts={"type": "NO_ARTIFACTS"}, serviceRole=ROLE,
                             environment={"type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
                                          "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": True})
    source = io.BytesIO()
    with zipfile.ZipFile(source, "w") as archive:
        archive.writestr("Dockerfile", "FROM python:3.11-slim\nCOPY train.py /opt/ml/code/\n")
    boto3.client("s3", region_name=REGION).put_object(Bucket="sim-artifacts", Key="code/model/image-source.zip",
                                                      Body=source.getvalue())
    repo = "123456789012.dkr.ecr.us-east-1.amazonaws.com/sim-images"
    ssm.put_parameter(Name="/sagebuild/sim/config", Type="String", Overwrite=True,
                      Value=json.dumps({**config(), "image": {"build": True}}))
    monkeypatch.setenv("SAGEBUILD_IMAGE_BUILD_PROJECT", "sim-images")
    monkeypatch.setenv("SAGEBUILD_IMAGE_REPOSITORY", repo)
    image_ports = lambda_entry.ports_from_environment()
    from lambda_pipeline.steps import bind_handlers
    engine.bind(bind_handlers(image_ports))
    arn = engine.ensure_state_machine("sim-image-build", render_definition(image_build=True))
    return codebuild, repo, image_ports, arn


def test_an_image_build_runs_on_codebuild_and_the_build_trains_and_serves_with_its_image(aws, monkeypatch):
    codebuild, repo, image_ports, arn = image_build_account(aws, monkeypatch)
    ports = aws[2]
    build = builds_of(arn, image_ports).start("a new Dockerfile")
    done = finished(image_ports, build.id)
    assert done.status == "SUCCEEDED", done.failure_reason
    assert [s.name for s in done.steps][:3] == ["Initialize", "BuildImage", "Train"]
    assert done.config["image"]["uri"] == f"{repo}:sim-v1"
    assert len(codebuild.list_builds_for_project(projectName="sim-images")["ids"]) == 1  # (moto keeps no overrides)
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    job = sagemaker.describe_training_job(TrainingJobName=done.training_job)
    assert job["AlgorithmSpecification"]["TrainingImage"] == f"{repo}:sim-v1"
    model = sagemaker.describe_model(ModelName="sim-v1")
    assert model["PrimaryContainer"]["Image"] == f"{repo}:sim-v1"
    assert ports.ledger.get_model("v1")["config"]["image"]["uri"] == f"{repo}:sim-v1"  # a rollback reuses it


def test_a_stop_during_the_image_build_stops_the_codebuild_build_and_no_training_starts(aws, monkeypatch):
    from moto.codebuild.models import CodeBuildBackend

    def builds_as_recorded(self, ids):  # moto ends every build at its first BatchGetBuilds; this one runs on
        return [b for history in self.build_metadata_history.values() for b in history if b["id"] in ids]

    monkeypatch.setattr(CodeBuildBackend, "batch_get_builds", builds_as_recorded)
    engine = aws[0]
    codebuild, _, image_ports, arn = image_build_account(aws, monkeypatch)
    builds = builds_of(arn, image_ports)
    build = builds.start("a new Dockerfile")
    image_build = wait_for(lambda: image_ports.ledger.get_build(build.id).image_build)
    assert codebuild.list_builds_for_project(projectName="sim-images")["ids"] == [image_build]
    assert wait_for(lambda: image_ports.ledger.get_state(f"waiting-on:image:{image_build}"))  # BuildImage waits
    stopped = builds.stop(build.number)
    assert stopped.status == "ABORTED" and stopped.failed_step == "BuildImage"
    assert image_ports.ledger.get_build(build.id).image_build == image_build  # the DynamoDB ledger kept the id
    assert codebuild.batch_get_builds(ids=[image_build])["builds"][0]["buildStatus"] == "STOPPED"
    # Step Functions aborts at once; moto ends an execution stopped in a token wait when the wait's
    # heartbeat runs out (FAILED, States.Timeout). Either way no state after BuildImage runs.
    ended = wait_for(lambda: (d := engine.describe(stopped.execution_arn))["status"] != "RUNNING" and d, timeout=20)
    assert ended["status"] in ("ABORTED", "FAILED")
    entered = [e["stateEnteredEventDetails"]["name"] for e in engine.history(stopped.execution_arn)
               if "stateEnteredEventDetails" in e]
    assert entered == ["Initialize", "BuildImage"]
    assert boto3.client("sagemaker", region_name=REGION).list_training_jobs()["TrainingJobSummaries"] == []
    done = image_ports.ledger.get_build(build.id)
    assert (done.status, done.failure_reason) == ("ABORTED", "stopped by a user")


def test_the_skill_on_lambda_answers_from_the_stack(aws, monkeypatch):
    engine, arn, ports, *_ = aws
    import skill.app
    monkeypatch.setattr(skill.app, "_default", None)
    monkeypatch.setenv("SKILL_ID", "amzn1.ask.skill.sim")
    monkeypatch.setenv("ALLOWED_USER_IDS", "amzn1.ask.account.me")
    monkeypatch.setenv("PIPELINE_NAME", "sim")
    monkeypatch.delenv("SAGEBUILD_ENGINE_URL", raising=False)
    from skill.envelopes import intent_request
    answer = skill.app.lambda_handler(intent_request("StartBuildIntent", skill_id="amzn1.ask.skill.sim",
                                                     user_id="amzn1.ask.account.me"), None)
    ssml = answer["response"]["outputSpeech"]["ssml"]
    assert "started build 1." in ssml.lower(), ssml
    build = ports.ledger.get_build(1)
    assert build.trigger_source == "voice" and build.execution_arn.startswith(arn.replace(":stateMachine:", ":execution:"))
    finished(ports, build.id)
    status = skill.app.lambda_handler(intent_request("BuildStatusIntent", skill_id="amzn1.ask.skill.sim",
                                                     user_id="amzn1.ask.account.someone-else"), None)
    assert "build 1 passed" in status["response"]["outputSpeech"]["ssml"].lower(), status


@pytest.fixture
def sim_stack(aws):
    """A CloudFormation stack whose outputs name the simulated account's resources, as a deployed one does."""
    engine, arn, ports, sqs, queue, ssm = aws
    topic = boto3.client("sns", region_name=REGION).list_topics()["Topics"][0]["TopicArn"]
    outputs = {"StateMachineArn": arn, "LedgerTableName": "sim-ledger", "ConfigParameterName": "/sagebuild/sim/config",
               "ArtifactsBucket": "sim-artifacts", "StatusTopicArn": topic, "SageMakerRoleArn": ROLE,
               "TrainingImageUri": IMAGE, "ServingImageUri": IMAGE, "EndpointName": "sim-endpoint"}
    template = {"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
                "Outputs": {k: {"Value": v} for k, v in outputs.items()}}
    boto3.client("cloudformation", region_name=REGION).create_stack(StackName="sim", TemplateBody=json.dumps(template))
    return aws


def test_the_notebook_client_works_against_a_stack(sim_stack):
    """SageBuild.from_stack reads a stack's outputs and uses the same adapters as its Lambdas."""
    engine, arn, ports, sqs, queue, ssm = sim_stack
    from sagebuild.client import SageBuild
    from lambda_pipeline.errors import NotFound
    sb = SageBuild.from_stack("sim", region=REGION)
    assert repr(sb) == f"<SageBuild stack sim; SageBuild.from_stack('sim', region={REGION!r})>"
    assert sb.config.get()["pipeline"] == "sim"
    sb.config.set({"training.hyperparameters.n-estimators": 9})
    stored = json.loads(ssm.get_parameter(Name="/sagebuild/sim/config")["Parameter"]["Value"])
    assert stored["training"]["hyperparameters"]["n-estimators"] == 9  # written to the stack's SSM parameter
    build = sb.start(reason="from a notebook on AWS")
    done = sb.wait(build, progress=False, timeout=60)
    assert done.status == "SUCCEEDED" and done.number == 1
    assert sb.builds()[1].reason == "from a notebook on AWS"
    assert sb.config.diff(1).changes == {}  # the build ran with the config as set
    live = sb.deployed()
    assert (live.endpoint, live.status, live.version, live.build_number) == ("sim-endpoint", "InService", "v1", 1)
    assert sb.invoke("1,2,3") == "body"  # moto's SageMaker runtime answers every call with this canned body
    with pytest.raises(NotFound, match="no stack 'missing'"):
        SageBuild.from_stack("missing", region=REGION)


def test_the_cli_works_against_a_stack(sim_stack, tmp_path):
    engine, arn, ports, *_ = sim_stack
    from sagebuild.cli import UI, main

    def cli(*args):
        out, err = io.StringIO(), io.StringIO()
        code = main(["--project", str(tmp_path), "--stack", "sim", "--region", REGION, *args], ui=UI(out, err))
        return code, out.getvalue(), err.getvalue()

    code, out, err = cli("start", "--reason", "from the terminal", "--hp", "n-estimators=11")
    assert code == 0 and out.startswith("Started build #1 ("), err
    build = finished(ports, ports.ledger.get_build(1).id)
    assert build.status == "SUCCEEDED" and build.hyperparameters == {"n-estimators": 11}
    code, out, err = cli("list")
    assert code == 0 and "from the terminal" in out and "SUCCEEDED" in out
    code, out, err = cli("status", "1", "--json")
    assert code == 0 and json.loads(out)["status"] == "SUCCEEDED"
    code, out, err = cli("endpoints")
    assert code == 0 and out.split()[:3] == ["sim-endpoint", "InService", "v1"]
    code, out, err = cli("invoke", "sim-endpoint", "--data", "1,2,3")
    assert code == 0 and out.strip() == "body"  # moto's canned SageMaker runtime answer
    code, out, err = cli("live")
    assert code == 0 and out.startswith("v1 is live on sim-endpoint")
    code, out, err = cli("stop")
    assert code == 1 and "no build is running or queued" in err
    code, out, err = main(["--stack", "nope", "--region", REGION, "list"], ui=UI(io.StringIO(), err_stream := io.StringIO())), None, None
    assert code == 2 and "no stack 'nope' in us-east-1" in err_stream.getvalue()


def test_one_skill_on_lambda_answers_for_a_dev_and_a_prod_stack(aws, monkeypatch):
    """Two stacks side by side (dev is the simulated account's, prod a second state machine and
    ledger); each wrote its directory entry, as the template's PipelineEntry does."""
    engine, dev_arn, dev_ports, *_ = aws
    from lambda_pipeline.adapters.aws import DynamoDBLedger
    boto3.client("dynamodb", region_name=REGION).create_table(
        TableName="sim-prod-ledger", BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name="/sagebuild/sim-prod/config", Type="String", Value=json.dumps({**config(), "pipeline": "sim-prod"}))
    prod_arn = engine.ensure_state_machine("sim-prod-build", render_definition())
    dev_env = {k: v for k, v in __import__("os").environ.items() if k.startswith("SAGEBUILD_")}
    prod_env = {**dev_env, "SAGEBUILD_STATE_MACHINE": prod_arn, "SAGEBUILD_LEDGER_TABLE": "sim-prod-ledger",
                "SAGEBUILD_CONFIG_PARAMETER": "/sagebuild/sim-prod/config"}
    lead, dev = "amzn1.ask.account.lead", "amzn1.ask.account.dev"
    for name, env, users in (("sim", dev_env, f"{lead},{dev}"), ("sim-prod", prod_env, lead)):
        ssm.put_parameter(Name=f"/sagebuild/pipelines/{name}", Type="String", Value=json.dumps(
            {"name": name, "allowed_user_ids": users, "others_can_query": True, "environment": env}))
    prod_ledger = DynamoDBLedger("sim-prod-ledger")
    shipped = prod_ledger.create_build("sim-prod", "cli", "release")
    prod_ledger.finish_build(shipped.id, "SUCCEEDED")
    import skill.app
    monkeypatch.setattr(skill.app, "_default", None)
    for key, value in {"SKILL_ID": "amzn1.ask.skill.sim", "ALLOWED_USER_IDS": f"{lead},{dev}", "PIPELINE_NAME": "sim",
                       "SAGEBUILD_PIPELINES_PATH": "/sagebuild/pipelines"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("SAGEBUILD_ENGINE_URL", raising=False)
    from skill.envelopes import intent_request

    def say(intent, user, slots=None, session=None):
        envelope = intent_request(intent, slots, skill_id="amzn1.ask.skill.sim", user_id=user,
                                  new_session=session is None, attributes=(session or {}).get("attributes"),
                                  session_id=(session or {}).get("id"))
        response = skill.app.lambda_handler(envelope, None)
        if session is not None:
            session.update(attributes=response.get("sessionAttributes") or {}, id=envelope["session"]["sessionId"])
        return response["response"]["outputSpeech"]["ssml"]

    refused = say("StartBuildIntent", dev, {"Pipeline": "prod"})
    assert "not allowed to start, stop or roll back sim prod" in refused, refused
    assert prod_ledger.list_builds() == [prod_ledger.get_build(1)]  # nothing started on prod
    started = say("StartBuildIntent", dev, {"Pipeline": "sim"})
    assert "sim: Started build 1." in started, started
    build = dev_ports.ledger.get_build(1)
    assert build.execution_arn.startswith(dev_arn.replace(":stateMachine:", ":execution:"))
    finished(dev_ports, build.id)  # nothing else calls AWS while the answers are counted
    import botocore.client
    calls: list[str] = []
    real_call = botocore.client.BaseClient._make_api_call

    def counted(client, operation, params):
        calls.append(f"{client.meta.service_model.service_name}:{operation}")
        return real_call(client, operation, params)
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counted)
    say("BuildStatusIntent", "amzn1.ask.account.someone-else")  # warm: clients built, directory listed
    calls.clear()
    across = say("BuildStatusIntent", "amzn1.ask.account.someone-else")
    assert "sim prod: build 1 passed" in across and "sim: build 1 passed" in across, across
    assert not [c for c in calls if c.startswith("ssm:")]  # the directory is cached for 10 s
    assert len(calls) <= 12, calls  # per stack: its latest builds (DynamoDB); 11 in moto 5
    calls.clear()
    only_prod = say("BuildStatusIntent", lead, {"Pipeline": "sim prod"})
    assert len(calls) <= 16 and "sagemaker:DescribeEndpoint" in calls, calls  # + what is live; 14 in moto 5
    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", real_call)
    assert "sim prod: Build 1 passed" in only_prod and "sim:" not in only_prod, only_prod
    session: dict = {}
    asked = say("StopBuildIntent", lead, session=session)
    assert "Which pipeline: sim or sim prod?" in asked
    stop = say("StopBuildIntent", lead, {"Pipeline": "sim"}, session=session)
    assert stop.startswith("<speak>sim: "), stop  # asks to confirm, or says build 1 already ended
