"""The AWS path, simulated: the state machine runs in moto's Step Functions with the step handlers
using their AWS adapters against moto's S3, SSM, DynamoDB, SageMaker and SNS (-> SQS)."""
import json

import boto3

from tests.functional.aws_sim import IMAGE, REGION, ROLE, aws, config, notifications, run_build  # noqa: F401

def test_a_build_runs_start_to_finish_on_the_aws_adapters(aws):
    engine, arn, ports, sqs, queue, _ = aws
    build, execution_status = run_build(engine, arn, ports, "simulated push")
    assert execution_status == "SUCCEEDED", build.failure_reason
    assert build.status == "SUCCEEDED" and build.version == "v1"
    assert [s.name for s in build.steps] == ["Initialize", "Train", "Evaluate", "Register", "Deploy", "VerifyLive",
                                             "Notify"]
    assert build.training_job.startswith("sim-v1-")
    model = ports.ledger.get_model("v1")
    assert model["artifact"].startswith("s3://") and model["code"] == "s3://sim-artifacts/code/model/sourcedir.tar.gz"
    assert model["data_refs"]["train"]["objects"] == 1
    live = ports.ledger.live_deployment("sim-endpoint")
    assert live["version"] == "v1" and live["endpoint_config"] == build.endpoint_config
    sagemaker = boto3.client("sagemaker", region_name=REGION)
    endpoint = sagemaker.describe_endpoint(EndpointName="sim-endpoint")
    assert endpoint["EndpointStatus"] == "InService" and endpoint["EndpointConfigName"] == build.endpoint_config
    job = sagemaker.describe_training_job(TrainingJobName=build.training_job)
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE and job["RoleArn"] == ROLE
    assert job["HyperParameters"]["n-estimators"] == "50"
    events = [(n["event"], n["payload"]["build_number"]) for n in notifications(sqs, queue)]
    assert events == [("build.succeeded", 1)]


def test_a_failing_build_records_its_reason_and_notifies(aws):
    engine, arn, ports, sqs, queue, ssm = aws
    ssm.put_parameter(Name="/sagebuild/sim/config", Type="String", Value=json.dumps(config("local")), Overwrite=True)
    build, execution_status = run_build(engine, arn, ports, "a config meant for the laptop")
    assert execution_status == "FAILED"
    assert build.status == "FAILED" and build.failed_step == "Train"
    assert build.failure_reason == "training.instance_type is 'local': set an ml.* instance type for AWS"
    (message,) = notifications(sqs, queue)
    assert message["event"] == "build.failed" and message["payload"]["failure_reason"] == build.failure_reason
    assert ports.ledger.live_deployment("sim-endpoint") is None  # nothing was deployed
