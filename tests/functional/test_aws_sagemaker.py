"""SageMaker adapters against botocore's Stubber: every request is checked against the service model."""
import io

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from lambda_pipeline.adapters.aws import SageMakerHosting, SageMakerTraining
from lambda_pipeline.config import validate_config
from lambda_pipeline.errors import SageBuildError, TransientError
from lambda_pipeline.model import Build
from lambda_pipeline.steps.handlers import training_job_spec

ROLE = "arn:aws:iam::123456789012:role/sagebuild-prod-SageMakerExecutionRole-ABC"
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"


@pytest.fixture
def sagemaker():
    client = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def spec():
    config = validate_config({"pipeline": "sagebuild-prod", "training": {
        "hyperparameters": {"n-estimators": 200}, "instance_type": "ml.m5.xlarge", "max_runtime_seconds": 3600,
        "metric_definitions": [{"Name": "validation:accuracy", "Regex": "validation accuracy: ([0-9.]+)"}]}})
    build = Build(id="b12345678901", number=4, pipeline="sagebuild-prod", status="RUNNING", trigger_source="git",
                  reason="r", created_at=0, version="v4")
    return training_job_spec(build, config, "s3://artifacts/code/abc/sourcedir.tar.gz",
                             {"train": "s3://data/data/train"}, "s3://artifacts/training-jobs")


@pytest.mark.parametrize("spot", [False, True])
def test_training_job_request_with_and_without_spot(sagemaker, spot):
    client, stub = sagemaker
    expected = spec()
    expected["RoleArn"] = ROLE
    expected["AlgorithmSpecification"]["TrainingImage"] = IMAGE
    expected["ResourceConfig"]["InstanceCount"] = 2
    if spot:
        expected["EnableManagedSpotTraining"] = True
        expected["StoppingCondition"]["MaxWaitTimeInSeconds"] = 7200
    stub.add_response("create_training_job", {"TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/x"}, expected)
    training = SageMakerTraining(ROLE, IMAGE, instance_count=2, use_spot=spot, boto3_client=client)
    assert training.create_training_job(spec()) == "sagebuild-prod-v4-b12345"
    assert expected["StoppingCondition"]["MaxRuntimeInSeconds"] == 3600
    assert expected["AlgorithmSpecification"]["MetricDefinitions"][0]["Name"] == "validation:accuracy"
    assert expected["HyperParameters"]["sagemaker_program"] == "train.py"


def test_throttling_is_transient_and_a_bad_request_is_not(sagemaker):
    client, stub = sagemaker
    stub.add_client_error("create_training_job", "ThrottlingException", "Rate exceeded")
    stub.add_client_error("create_training_job", "ValidationException", "bad instance type")
    training = SageMakerTraining(ROLE, IMAGE, boto3_client=client)
    with pytest.raises(TransientError, match="ThrottlingException"):
        training.create_training_job(spec())
    with pytest.raises(SageBuildError, match="bad instance type") as err:
        training.create_training_job(spec())
    assert not isinstance(err.value, TransientError)


def test_local_instance_type_is_refused_before_calling_aws():
    bad = spec()
    bad["ResourceConfig"]["InstanceType"] = "local"
    with pytest.raises(SageBuildError, match="set an ml.\\* instance type"):
        SageMakerTraining(ROLE, IMAGE, boto3_client=object()).create_training_job(bad)


def test_describe_and_stop_training(sagemaker):
    client, stub = sagemaker
    stub.add_response("describe_training_job", {
        "TrainingJobName": "j", "TrainingJobArn": "arn:aws:sagemaker:us-east-1:1:training-job/j",
        "TrainingJobStatus": "Completed", "SecondaryStatus": "Completed", "CreationTime": 0,
        "ModelArtifacts": {"S3ModelArtifacts": "s3://artifacts/training-jobs/j/output/model.tar.gz"},
        "AlgorithmSpecification": {"TrainingInputMode": "File", "TrainingImage": IMAGE},
        "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "FinalMetricDataList": [{"MetricName": "validation:accuracy", "Value": 0.97, "Timestamp": 0}]},
        {"TrainingJobName": "j"})
    stub.add_response("stop_training_job", {}, {"TrainingJobName": "j"})
    stub.add_client_error("stop_training_job", "ValidationException", "The job is not in progress",
                          expected_params={"TrainingJobName": "j"})
    training = SageMakerTraining(ROLE, IMAGE, boto3_client=client)
    job = training.describe_training_job("j")
    assert job["FinalMetricDataList"][0]["Value"] == 0.97
    training.stop_training_job("j")
    training.stop_training_job("j")  # already ended: not an error


def test_model_config_and_create_versus_update_with_blue_green(sagemaker):
    client, stub = sagemaker
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"}, {
        "ModelName": "sagebuild-prod-v4", "ExecutionRoleArn": ROLE, "PrimaryContainer": {
            "Image": IMAGE, "ModelDataUrl": "s3://a/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "s3://a/code.tar.gz"}}})
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": "arn:aws:sagemaker:us-east-1:1:endpoint-config/c"}, {
        "EndpointConfigName": "sagebuild-prod-v4-b12345", "ProductionVariants": [{
            "VariantName": "AllTraffic", "ModelName": "sagebuild-prod-v4", "InitialInstanceCount": 2,
            "InstanceType": "ml.c5.large", "InitialVariantWeight": 1.0}]})
    stub.add_response("create_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/e"},
                      {"EndpointName": "sagebuild-prod-endpoint", "EndpointConfigName": "sagebuild-prod-v4-b12345"})
    stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/e"}, {
        "EndpointName": "sagebuild-prod-endpoint", "EndpointConfigName": "sagebuild-prod-v5-c12345",
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "CANARY", "WaitIntervalInSeconds": 600,
                                                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10}},
                "TerminationWaitInSeconds": 120, "MaximumExecutionTimeoutInSeconds": 3600},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "sagebuild-prod-5xx"}]}}})
    hosting = SageMakerHosting(ROLE, IMAGE, instance_type="ml.c5.large", instance_count=2, boto3_client=client,
                               traffic={"type": "CANARY", "percent": 10, "wait_seconds": 600,
                                        "alarms": ["sagebuild-prod-5xx"]})
    hosting.create_model("sagebuild-prod-v4", "s3://a/model.tar.gz", "s3://a/code.tar.gz", "inference.py")
    hosting.create_endpoint_config("sagebuild-prod-v4-b12345", "sagebuild-prod-v4")
    hosting.create_endpoint("sagebuild-prod-endpoint", "sagebuild-prod-v4-b12345")
    hosting.update_endpoint("sagebuild-prod-endpoint", "sagebuild-prod-v5-c12345")
    assert hosting.cancel_update("sagebuild-prod-endpoint", "x") is False


def test_deploy_workers_become_the_containers_sagemaker_model_server_workers(sagemaker):
    client, stub = sagemaker
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"}, {
        "ModelName": "m1", "ExecutionRoleArn": ROLE, "PrimaryContainer": {
            "Image": IMAGE, "ModelDataUrl": "s3://a/model.tar.gz",
            "Environment": {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "s3://a/code.tar.gz",
                            "SAGEMAKER_MODEL_SERVER_WORKERS": "3"}}})
    stub.add_response("create_model", {"ModelArn": "arn:aws:sagemaker:us-east-1:1:model/m"}, {
        "ModelName": "m2", "ExecutionRoleArn": ROLE, "PrimaryContainer": {
            "Image": IMAGE, "ModelDataUrl": "s3://a/model.tar.gz"}})
    workers = {"n": 3}
    hosting = SageMakerHosting(ROLE, IMAGE, boto3_client=client, workers=lambda: workers["n"])
    hosting.create_model("m1", "s3://a/model.tar.gz", "s3://a/code.tar.gz", "inference.py")
    workers["n"] = None  # null: the container's default (the CPU count)
    hosting.create_model("m2", "s3://a/model.tar.gz", None, None)


def test_linear_policy_and_missing_endpoint(sagemaker):
    client, stub = sagemaker
    hosting = SageMakerHosting(ROLE, IMAGE, boto3_client=client, traffic={"type": "LINEAR", "percent": 25})
    routing = hosting.deployment_config()["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"]
    assert routing["LinearStepSize"] == {"Type": "CAPACITY_PERCENT", "Value": 25}
    assert "AutoRollbackConfiguration" not in hosting.deployment_config()
    stub.add_client_error("describe_endpoint", "ValidationException", "Could not find endpoint \"nope\".",
                          expected_params={"EndpointName": "nope"})
    assert hosting.describe_endpoint("nope") is None


def test_smoke_invocation_reports_the_model_error():
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(runtime) as stub:
        stub.add_response("invoke_endpoint", {"Body": StreamingBody(io.BytesIO(b'[0]'), 3), "ContentType": "application/json"},
                          {"EndpointName": "e", "Body": b"1,2", "ContentType": "text/csv", "Accept": "application/json"})
        stub.add_client_error("invoke_endpoint", "ModelError", "feature scaler missing", http_status_code=424,
                              response_meta={"HTTPStatusCode": 424}, expected_params={"EndpointName": "e", "Body": ANY,
                                                                                       "ContentType": "text/csv",
                                                                                       "Accept": "application/json"})
        hosting = SageMakerHosting(ROLE, IMAGE, boto3_client=object(), runtime_client=runtime)
        assert hosting.invoke_endpoint("e", b"1,2", "text/csv") == (200, b"[0]")
        status, body = hosting.invoke_endpoint("e", b"1,2", "text/csv")
        assert status == 424 and b"feature scaler missing" in body


def test_the_builds_deploy_traffic_reaches_the_endpoint_update(sagemaker):
    """deploy.traffic in the config (the build's snapshot) drives SageMaker's blue/green policy."""
    from lambda_pipeline.config import validate_config
    client, stub = sagemaker
    config = validate_config({"pipeline": "fraud", "deploy": {"traffic": {
        "type": "linear", "percent": 25, "wait_seconds": 120, "alarms": ["fraud-5xx", "fraud-latency"]}}})
    stub.add_response("update_endpoint", {"EndpointArn": "arn:aws:sagemaker:us-east-1:1:endpoint/fraud"}, {
        "EndpointName": "fraud", "EndpointConfigName": "fraud-v2-abcdef", "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {"Type": "LINEAR", "WaitIntervalInSeconds": 120,
                                                "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 25}},
                "TerminationWaitInSeconds": 120, "MaximumExecutionTimeoutInSeconds": 3600},
            "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "fraud-5xx"}, {"AlarmName": "fraud-latency"}]}}})
    SageMakerHosting(ROLE, IMAGE, boto3_client=client).update_endpoint("fraud", "fraud-v2-abcdef",
                                                                       traffic=config["deploy"]["traffic"])
    stub.assert_no_pending_responses()
