"""The simulated AWS account the AWS-path tests share: moto's Step Functions runs the state machine,
the step handlers use their AWS adapters against moto's S3, SSM, DynamoDB, SageMaker and SNS (-> SQS)."""
import contextlib
import io
import json
import tarfile
import time

import boto3
import pytest

from infrastructure.local.engine import Engine
from lambda_pipeline import lambda_entry
from lambda_pipeline.definition import render_definition
from lambda_pipeline.lambda_entry import ports_from_environment
from lambda_pipeline.steps import bind_handlers

REGION = "us-east-1"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
ROLE = "arn:aws:iam::123456789012:role/sim-SageMakerExecutionRole"


def config(instance_type="ml.m5.large"):
    return {"pipeline": "sim", "training": {
        "source_dir": "model", "entry_point": "train.py", "hyperparameters": {"n-estimators": 50},
        "channels": {"train": "s3://sim-data/data/train"}, "instance_type": instance_type,
        "metric_definitions": [{"Name": "validation:accuracy", "Regex": "validation accuracy: ([0-9.]+)"}]},
        "deploy": {"endpoint": "sim-endpoint", "entry_point": "inference.py"},
        "polling": {"initial_seconds": 0, "max_seconds": 1, "backoff_rate": 1.0}}


@pytest.fixture
def aws(monkeypatch):
    with simulated_account(monkeypatch) as found:
        yield found


@contextlib.contextmanager
def simulated_account(monkeypatch):
    """(engine, state machine ARN, ports, sqs, status queue URL, ssm) of a fresh simulated account."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    engine = Engine({})  # starts moto with Step Functions execution on; steps are bound below
    try:
        s3 = boto3.client("s3", region_name=REGION)
        for bucket in ("sim-artifacts", "sim-data"):
            s3.create_bucket(Bucket=bucket)
        code = io.BytesIO()
        with tarfile.open(fileobj=code, mode="w:gz") as tar:
            data = b"print('validation accuracy: 0.97')\n"
            info = tarfile.TarInfo("train.py")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        s3.put_object(Bucket="sim-artifacts", Key="code/model/sourcedir.tar.gz", Body=code.getvalue())
        s3.put_object(Bucket="sim-data", Key="data/train/rows.csv", Body=b"1,2,3\n")
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/sagebuild/sim/config", Type="String", Value=json.dumps(config()))
        boto3.client("dynamodb", region_name=REGION).create_table(
            TableName="sim-ledger", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
        sns, sqs = boto3.client("sns", region_name=REGION), boto3.client("sqs", region_name=REGION)
        topic = sns.create_topic(Name="sim-status")["TopicArn"]
        queue = sqs.create_queue(QueueName="sim-status-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        env = {"SAGEBUILD_ARTIFACTS_BUCKET": "sim-artifacts", "SAGEBUILD_TRAINING_IMAGE": IMAGE,
               "SAGEBUILD_SAGEMAKER_ROLE": ROLE, "SAGEBUILD_CONFIG_PARAMETER": "/sagebuild/sim/config",
               "SAGEBUILD_LEDGER_TABLE": "sim-ledger", "SAGEBUILD_STATUS_TOPIC": topic}
        ports = ports_from_environment(env)
        engine.bind(bind_handlers(ports))  # as each Lambda container binds its own at cold start
        arn = engine.ensure_state_machine("sim-build", render_definition())
        for key, value in {**env, "SAGEBUILD_STATE_MACHINE": arn}.items():  # as the stack sets them
            monkeypatch.setenv(key, value)
        yield engine, arn, ports, sqs, queue, ssm
    finally:
        lambda_entry.forget_cached_clients()
        engine.close()


def run_build(engine, arn, ports, reason):
    build = ports.ledger.create_build("sim", "api", reason)
    ports.ledger.update_build(build.id, status="RUNNING", started_at=time.time())
    execution = engine.start(arn, f"build-{build.number}", {"build_id": build.id})
    deadline = time.monotonic() + 60
    while engine.describe(execution)["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return ports.ledger.get_build(build.id), engine.describe(execution)["status"]


def notifications(sqs, queue):
    messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(json.loads(m["Body"])["Message"]) for m in messages]




def wait_for(predicate, timeout=60.0):
    """Poll until ``predicate()`` is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value
