"""The CodeBuild image builder against botocore's Stubber: requests checked against the service model."""
import boto3
import pytest
from botocore.stub import Stubber

from lambda_pipeline.adapters.aws.codebuild import BUILDSPEC, CodeBuildImageBuilder
from lambda_pipeline.errors import NotFound, SageBuildError, TransientError

REPO = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/prod-images"
BUILD_ID = "prod-images:0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"


@pytest.fixture
def stubbed():
    client = boto3.client("codebuild", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield CodeBuildImageBuilder("prod-images", REPO, boto3_client=client), stubber
        stubber.assert_no_pending_responses()


def test_start_build_overrides_the_source_and_tags_the_image_per_version(stubbed):
    builder, stubber = stubbed
    stubber.add_response("start_build", {"build": {"id": BUILD_ID, "buildStatus": "IN_PROGRESS"}}, {
        "projectName": "prod-images", "sourceTypeOverride": "S3",
        "sourceLocationOverride": "prod-artifacts/code/model/image-source.zip", "buildspecOverride": BUILDSPEC,
        "environmentVariablesOverride": [{"name": "IMAGE_TAG", "value": "prod-v7", "type": "PLAINTEXT"},
                                         {"name": "IMAGE_REPO_URI", "value": REPO, "type": "PLAINTEXT"}]})
    started = builder.start_build("prod-artifacts/code/model/image-source.zip", tag="prod-v7")
    assert started == {"id": BUILD_ID, "image_uri": f"{REPO}:prod-v7"}


def test_status_maps_codebuild_states_and_names_the_failing_phase(stubbed):
    builder, stubber = stubbed
    stubber.add_response("batch_get_builds", {"builds": [{"id": BUILD_ID, "buildStatus": "IN_PROGRESS",
                                                          "currentPhase": "BUILD"}]}, {"ids": [BUILD_ID]})
    stubber.add_response("batch_get_builds", {"builds": [{"id": BUILD_ID, "buildStatus": "SUCCEEDED"}]}, {"ids": [BUILD_ID]})
    stubber.add_response("batch_get_builds", {"builds": [{"id": BUILD_ID, "buildStatus": "FAILED", "phases": [
        {"phaseType": "PRE_BUILD", "phaseStatus": "SUCCEEDED"},
        {"phaseType": "BUILD", "phaseStatus": "FAILED", "contexts": [
            {"statusCode": "COMMAND_EXECUTION_ERROR", "message": "Error while executing command: docker build. Reason: exit status 1"}]}]}]},
        {"ids": [BUILD_ID]})
    stubber.add_response("batch_get_builds", {"builds": []}, {"ids": [BUILD_ID]})
    assert builder.describe_build(BUILD_ID) == {"status": "InProgress", "phase": "BUILD"}
    assert builder.describe_build(BUILD_ID) == {"status": "Succeeded"}
    assert builder.describe_build(BUILD_ID) == {"status": "Failed", "reason": (
        "the image build failed in its BUILD phase: COMMAND_EXECUTION_ERROR: "
        "Error while executing command: docker build. Reason: exit status 1")}
    with pytest.raises(NotFound):
        builder.describe_build(BUILD_ID)


def test_stop_and_errors_are_translated(stubbed):
    builder, stubber = stubbed
    stubber.add_response("stop_build", {"build": {"id": BUILD_ID, "buildStatus": "STOPPED"}}, {"id": BUILD_ID})
    stubber.add_client_error("start_build", "ThrottlingException", "Rate exceeded")
    stubber.add_client_error("start_build", "ResourceNotFoundException", "Project cannot be found")
    builder.stop_build(BUILD_ID)
    with pytest.raises(TransientError, match="Rate exceeded"):
        builder.start_build("b/k.zip", "t")
    with pytest.raises(SageBuildError, match="Project cannot be found"):
        builder.start_build("b/k.zip", "t")
