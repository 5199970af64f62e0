"""The Pipelines port's adapters: the local registry of running engines and the region's SSM directory."""
import json
import os
import time

import boto3
import pytest
from moto import mock_aws

from infrastructure.local.registry import PipelineRegistry, RegisteredPipeline
from lambda_pipeline.adapters.aws.ssm_pipelines import SsmPipelines
from lambda_pipeline.adapters.local.http_builds import HttpBuilds
from lambda_pipeline.adapters.local.registry_pipelines import RegistryPipelines
from lambda_pipeline.errors import UnknownPipeline


def project(tmp_path, name, users=("amzn1.ask.account.dev-team",)):
    folder = tmp_path / name
    folder.mkdir()
    (folder / "sagebuild.json").write_text(json.dumps({"pipeline": name, "training": {"entry_point": "train.py"},
                                                        "skill": {"allowed_user_ids": list(users)}}))
    return folder


def register(registry, folder, name, port):
    registry.register(RegisteredPipeline(name=name, project=str(folder), url=f"http://127.0.0.1:{port}",
                                         pid=os.getpid(), token=f"token-{name}", started_at=time.time()))


def test_registry_pipelines_reads_the_registry_on_every_call_and_each_project_s_permissions(tmp_path):
    registry = PipelineRegistry(tmp_path / "home")
    pipelines = RegistryPipelines(registry)
    assert pipelines.names() == []
    register(registry, project(tmp_path, "wine"), "wine", 9001)
    assert pipelines.names() == ["wine"]
    register(registry, project(tmp_path, "fraud", users=("amzn1.ask.account.lead",)), "fraud", 9002)
    assert pipelines.names() == ["fraud", "wine"]  # registered after the first call: found
    builds = pipelines.builds("fraud")
    assert isinstance(builds, HttpBuilds) and builds.url == "http://127.0.0.1:9002"
    assert builds._token == "token-fraud"  # the engine's own token travels with it
    fraud = pipelines.info("fraud")
    assert fraud.may_act("amzn1.ask.account.lead") and not fraud.may_act("amzn1.ask.account.dev-team")
    assert pipelines.info("wine").may_act("amzn1.ask.account.dev-team")
    assert fraud.folder == str(tmp_path / "fraud")
    (tmp_path / "fraud" / "sagebuild.json").write_text(json.dumps({
        "pipeline": "fraud", "training": {"entry_point": "train.py"}, "skill": {"allowed_user_ids": ["x"]}}))
    os.utime(tmp_path / "fraud" / "sagebuild.json", (time.time() + 5, time.time() + 5))
    assert pipelines.info("fraud").allowed_user_ids == {"x"}  # an edited config is read again
    registry.unregister(str(tmp_path / "wine"))
    with pytest.raises(UnknownPipeline, match="'wine'.*fraud"):
        pipelines.builds("wine")


def test_two_projects_with_one_pipeline_name_are_told_apart_by_folder(tmp_path):
    registry = PipelineRegistry(tmp_path / "home")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    register(registry, project(tmp_path / "a", "wine"), "wine", 9001)
    register(registry, project(tmp_path / "b", "wine"), "wine", 9002)
    names = RegistryPipelines(registry).names()
    assert set(names) == {"wine (wine)", f"wine ({tmp_path / 'b' / 'wine'})"}
    assert RegistryPipelines(registry).builds(f"wine ({tmp_path / 'b' / 'wine'})").url == "http://127.0.0.1:9002"


def entry(stack, users=""):
    return json.dumps({"name": stack, "allowed_user_ids": users, "others_can_query": True, "environment": {
        "SAGEBUILD_STATE_MACHINE": f"arn:aws:states:us-east-1:123456789012:stateMachine:{stack}-build",
        "SAGEBUILD_LEDGER_TABLE": f"{stack}-LedgerTable-X"}})


def test_ssm_pipelines_lists_every_stack_and_caches_for_its_ttl():
    with mock_aws():
        ssm = boto3.client("ssm", region_name="us-east-1")
        ssm.put_parameter(Name="/sagebuild/pipelines/wine-dev", Type="String", Value=entry("wine-dev", "dev-a, dev-b"))
        ssm.put_parameter(Name="/sagebuild/pipelines/not-json", Type="String", Value="{oops")  # skipped, logged
        ssm.put_parameter(Name="/sagebuild/wine-dev/config", Type="String", Value="{}")  # another path
        now = [0.0]
        pipelines = SsmPipelines(boto3_client=ssm, ttl=10, builds_factory=dict, clock=lambda: now[0])
        assert pipelines.names() == ["wine-dev"]
        assert pipelines.info("wine-dev").allowed_user_ids == {"dev-a", "dev-b"}
        ssm.put_parameter(Name="/sagebuild/pipelines/wine-prod", Type="String", Value=entry("wine-prod"))
        assert pipelines.names() == ["wine-dev"]  # within the ttl
        assert pipelines.builds("wine-prod")["SAGEBUILD_LEDGER_TABLE"] == "wine-prod-LedgerTable-X"  # asked by name: re-listed
        now[0] = 11
        assert pipelines.names() == ["wine-dev", "wine-prod"]
        assert not pipelines.info("wine-prod").may_act("dev-a")
        with pytest.raises(UnknownPipeline):
            pipelines.info("fraud")
