"""`sagebuild aws deploy | destroy | skill-package` against moto's CloudFormation, S3, Lambda and
SageMaker (the four resource types moto cannot model left out, as in test_aws_template), the
failure path against botocore's Stubber, and the Lambda zip imported in a bare interpreter."""
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber
from moto import mock_aws

from infrastructure.aws import render_template
from infrastructure.aws.package import LAMBDA_PROVIDED, build_lambda_zip
from infrastructure.aws.stacks import StackTool
from lambda_pipeline.errors import DeployFailed
from sagebuild.cli import UI, main
from tests.functional.cfn_moto import refresh_stacks_after_change_sets, unmodelled

REGION = "us-east-1"
ROOT = Path(__file__).resolve().parents[2]


def run(project, *args):
    out, err = io.StringIO(), io.StringIO()
    code = main(["--project", str(project), *args], ui=UI(out, err))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def account(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    project = tmp_path / "wine"
    code, out, err = run(tmp_path, "init", str(project), "--example", "wine")  # as a user would, data included
    assert code == 0, err
    template = tmp_path / "moto.yaml"
    tpl, _ = unmodelled(yaml.safe_load(render_template()))
    template.write_text(yaml.safe_dump(tpl))
    refresh_stacks_after_change_sets(monkeypatch)
    with mock_aws():
        yield project, template


def test_deploy_resolves_images_packages_uploads_and_creates_the_stack_by_change_set(account):
    project, template = account
    code, out, err = run(project, "aws", "deploy", "--stack", "sb-dev", "--template", str(template),
                         "--param", "TriggerBranch=dev", "--param", "FrameworkVersion=1.2-1",
                         "--param", "AlexaSkillId=amzn1.ask.skill.dev", "--param", "AllowedAlexaUserIds=u1, u2",
                         "--upload-data")
    assert code == 0, err
    assert "images (sklearn 1.2-1 in us-east-1, from the SageMaker SDK catalogue):" in out
    assert "training 683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3" in out
    assert "change set sagebuild-" in out and "(create)" in out and "  Add     BuildStateMachine" in out
    assert "sb-dev: CREATE_COMPLETE" in out
    cfn = boto3.client("cloudformation", region_name=REGION)
    stack = cfn.describe_stacks(StackName="sb-dev")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["TriggerBranch"] == "dev" and params["CodeBucket"] == "sagebuild-staging-123456789012-us-east-1"
    assert params["CodeKey"].startswith("sagebuild/sb-dev/lambda-") and params["CodeKey"].endswith(".zip")
    for key, value in outputs.items():
        assert f"  {key:<22} {value}" in out  # every output printed
    s3 = boto3.client("s3", region_name=REGION)
    staging = params["CodeBucket"]
    assert s3.get_public_access_block(Bucket=staging)["PublicAccessBlockConfiguration"]["BlockPublicAcls"]
    assert s3.get_bucket_encryption(Bucket=staging)["ServerSideEncryptionConfiguration"]["Rules"]
    code_zip = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=staging, Key=params["CodeKey"])["Body"].read()))
    assert "lambda_pipeline/lambda_entry.py" in code_zip.namelist() and "skill/app.py" in code_zip.namelist()
    lam = boto3.client("lambda", region_name=REGION)
    skill_env = lam.get_function_configuration(FunctionName=outputs["SkillFunctionArn"])["Environment"]["Variables"]
    assert skill_env["SAGEBUILD_TRAINING_IMAGE"].endswith("sagemaker-scikit-learn:1.2-1-cpu-py3")
    assert skill_env["SAGEBUILD_STATE_MACHINE"] == outputs["StateMachineArn"]
    # The project's config, adapted to the stack, is what its builds read:
    from lambda_pipeline.config import validate_config
    stored = json.loads(boto3.client("ssm", region_name=REGION).get_parameter(
        Name=outputs["ConfigParameterName"])["Parameter"]["Value"])
    config = validate_config(stored, "the stack's config")
    assert config["pipeline"] == "sb-dev" and config["deploy"]["endpoint"] == "sb-dev-endpoint"
    assert config["gate"]["minimum"] == 0.85 and config["training"]["hyperparameters"]["n-estimators"] == 100
    assert config["training"]["channels"] == {"train": f"s3://{outputs['DataBucket']}/data/train",
                                              "validation": f"s3://{outputs['DataBucket']}/data/validation"}
    assert config["training"]["instance_type"] == "ml.m5.large"  # 'local' became the stack's instance type
    assert config["polling"] == {"heartbeat_seconds": 600}
    assert config["skill"]["skill_id"] == "amzn1.ask.skill.dev" and config["skill"]["allowed_user_ids"] == ["u1", "u2"]
    assert config["deploy"]["sample_payload"].startswith("13.2,")
    # --upload-data: every channel's files under data/<channel>/ (which, on AWS, starts a build):
    data_keys = {o["Key"] for o in s3.list_objects_v2(Bucket=outputs["DataBucket"])["Contents"]}
    local_files = {f"data/{c}/{p.name}" for c in ("train", "validation") for p in (project / "data" / c).iterdir()}
    assert data_keys == local_files and local_files
    # The project's training code went where builds look for it:
    body = s3.get_object(Bucket=outputs["ArtifactsBucket"], Key="code/model/sourcedir.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert {"train.py", "inference.py"} <= set(tar.getnames())
    # Again with a change: an update change set; no change at all: nothing to do.
    code, out, err = run(project, "aws", "deploy", "--stack", "sb-dev", "--template", str(template),
                         "--param", "TriggerBranch=dev", "--param", "FrameworkVersion=1.2-1",
                         "--param", "UseSpotTraining=true", "--no-code")
    assert code == 0, err
    assert "(update)" in out and "uploaded s3://" + outputs["ArtifactsBucket"] not in out
    boto3.client("ssm", region_name=REGION).put_parameter(Name=outputs["ConfigParameterName"], Type="String",
                                                          Overwrite=True, Value=json.dumps({**stored, "gate": {}}))
    code, out, err = run(project, "aws", "deploy", "--stack", "sb-dev", "--template", str(template),
                         "--param", "TriggerBranch=dev", "--param", "FrameworkVersion=1.2-1",
                         "--param", "UseSpotTraining=true", "--keep-config")
    assert code == 0 and "no changes: the stack is up to date" in out and "kept SSM" in out
    kept = json.loads(boto3.client("ssm", region_name=REGION).get_parameter(
        Name=outputs["ConfigParameterName"])["Parameter"]["Value"])
    assert kept["gate"] == {}  # --keep-config left the edit made in SSM alone
    env = lam.get_function_configuration(FunctionName=outputs["SkillFunctionArn"])["Environment"]["Variables"]
    assert env["SAGEBUILD_USE_SPOT"] == "true"


def test_deploy_picks_the_images_of_the_projects_configured_framework(account, tmp_path):
    _, template = account
    project = tmp_path / "cancer"
    code, out, err = run(tmp_path, "init", str(project), "--example", "xgboost")
    assert code == 0, err
    code, out, err = run(project, "aws", "deploy", "--stack", "sb-xgb", "--template", str(template), "--no-code")
    assert code == 0, err
    assert "framework: xgboost 3.2-0 (training.framework in sagebuild.json)" in out
    assert "images (xgboost 3.2-0 in us-east-1, from the SageMaker SDK catalogue):" in out
    stack = boto3.client("cloudformation", region_name=REGION).describe_stacks(StackName="sb-xgb")["Stacks"][0]
    params = {p["ParameterKey"]: p["ParameterValue"] for p in stack["Parameters"]}
    assert params["Framework"] == "xgboost" and params["FrameworkVersion"] == "3.2-0"
    assert params["TrainingImageUri"].endswith("/sagemaker-xgboost:3.2-0")
    assert params["ServingImageUri"].endswith("/sagemaker-xgboost:3.2-0")
    # a parameter contradicting what the config names is refused, before anything is created
    code, out, err = run(project, "aws", "deploy", "--stack", "sb-xgb2", "--param", "Framework=sklearn")
    assert code == 2 and "--param Framework=sklearn contradicts training.framework 'xgboost'" in err
    code, out, err = run(project, "aws", "deploy", "--stack", "sb-xgb2", "--param", "FrameworkVersion=1.7-1")
    assert code == 2 and "--param FrameworkVersion=1.7-1 contradicts training.framework_version '3.2-0'" in err


def test_deploy_refuses_unknown_parameters_and_bad_pairs_before_touching_aws(account):
    project, template = account
    code, out, err = run(project, "aws", "deploy", "--stack", "sb", "--template", str(template), "--param", "Spot=yes")
    assert code == 2 and "unknown parameter(s) Spot; the template takes:" in err and "UseSpotTraining" in err
    code, out, err = run(project, "aws", "deploy", "--stack", "sb", "--param", "UseSpotTraining")
    assert code == 2 and "expected KEY=VALUE" in err
    code, out, err = run(project, "aws", "deploy", "--stack", "sb", "--param", "FrameworkVersion=0.1")
    assert code == 2 and "Unsupported sklearn version: 0.1" in err
    assert boto3.client("s3", region_name=REGION).list_buckets()["Buckets"] == []


def test_destroy_empties_buckets_deletes_the_endpoint_and_the_stack(account):
    project, template = account
    assert run(project, "aws", "deploy", "--stack", "sb-prod", "--template", str(template),
               "--param", "FrameworkVersion=1.2-1")[0] == 0
    cfn = boto3.client("cloudformation", region_name=REGION)
    outputs = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName="sb-prod")["Stacks"][0]["Outputs"]}
    s3 = boto3.client("s3", region_name=REGION)
    s3.put_object(Bucket=outputs["ArtifactsBucket"], Key="models/v1/model.tar.gz", Body=b"1")
    s3.put_object(Bucket=outputs["ArtifactsBucket"], Key="models/v1/model.tar.gz", Body=b"2")  # a second version
    s3.put_object(Bucket=outputs["DataBucket"], Key="data/train/rows.csv", Body=b"1,2\n")
    sm = boto3.client("sagemaker", region_name=REGION)
    role = "arn:aws:iam::123456789012:role/x"
    sm.create_model(ModelName="sb-prod-v1", ExecutionRoleArn=role, PrimaryContainer={"Image": "i"})
    sm.create_model(ModelName="other-stack-v1", ExecutionRoleArn=role, PrimaryContainer={"Image": "i"})
    sm.create_endpoint_config(EndpointConfigName="sb-prod-v1-abc", ProductionVariants=[{
        "VariantName": "AllTraffic", "ModelName": "sb-prod-v1", "InitialInstanceCount": 1, "InstanceType": "ml.t2.medium"}])
    sm.create_endpoint(EndpointName="sb-prod-endpoint", EndpointConfigName="sb-prod-v1-abc")
    code, out, err = run(project, "aws", "destroy", "--stack", "sb-prod")
    assert code == 1 and "pass --yes" in err  # no terminal: not confirmed, nothing deleted
    assert sm.describe_endpoint(EndpointName="sb-prod-endpoint")
    code, out, err = run(project, "aws", "destroy", "--stack", "sb-prod", "--yes")
    assert code == 0, err
    assert f"emptying s3://{outputs['ArtifactsBucket']}: 2 object version(s) deleted" in out
    assert f"emptying s3://{outputs['DataBucket']}: 1 object version(s) deleted" in out
    assert "deleted endpoint sb-prod-endpoint" in out and "deleted model sb-prod-v1" in out
    assert [m["ModelName"] for m in sm.list_models()["Models"]] == ["other-stack-v1"]  # another stack's stays
    assert sm.list_endpoints()["Endpoints"] == []
    stacks = [s for s in cfn.list_stacks()["StackSummaries"] if s["StackName"] == "sb-prod"]
    assert stacks and all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks)
    code, out, err = run(project, "aws", "destroy", "--stack", "sb-prod", "--yes")
    assert code == 2 and "no stack 'sb-prod'" in err  # NotFound, like other unknown names


def test_skill_package_points_the_manifest_at_the_stacks_skill_function(account, tmp_path):
    project, template = account
    assert run(project, "aws", "deploy", "--stack", "sb-dev", "--template", str(template),
               "--param", "FrameworkVersion=1.2-1", "--no-code")[0] == 0
    code, out, err = run(project, "aws", "skill-package", "--stack", "sb-dev", "--out", str(tmp_path / "pkg"))
    assert code == 0, err
    arn = {o["OutputKey"]: o["OutputValue"] for o in boto3.client("cloudformation", region_name=REGION).describe_stacks(
        StackName="sb-dev")["Stacks"][0]["Outputs"]}["SkillFunctionArn"]
    resources = json.loads((tmp_path / "pkg" / "ask-resources.json").read_text())
    assert resources["profiles"]["default"]["skillMetadata"]["src"] == "./skill-package"
    manifest = json.loads((tmp_path / "pkg" / "skill-package" / "skill.json").read_text())
    assert manifest["manifest"]["apis"]["custom"]["endpoint"] == {"uri": arn}
    assert manifest["manifest"]["events"]["endpoint"] == {"uri": arn}  # skill events (notification opt-ins) too
    models = sorted(p.name for p in (tmp_path / "pkg" / "skill-package" / "interactionModels" / "custom").iterdir())
    assert models == ["en-US.json", "fr-FR.json", "ja-JP.json"]


def test_a_failed_deploy_exits_non_zero_with_the_failing_resources_reason(account):
    project, template = account
    session = boto3.session.Session(region_name=REGION)
    lines = []
    tool = StackTool(session, say=lines.append, poll_seconds=0)
    stubber = Stubber(tool.cfn)
    stubber.add_client_error("describe_stacks", "ValidationError", "Stack with id sb does not exist")
    stubber.add_response("create_change_set", {"Id": "arn:aws:cloudformation:us-east-1:123456789012:changeSet/c/1",
                                               "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/sb/1"},
                         {"StackName": "sb", "ChangeSetName": ANY, "ChangeSetType": "CREATE", "Parameters": ANY,
                          "Capabilities": ANY, "Tags": ANY, "TemplateURL": ANY})  # over 51,200 bytes: via S3
    stubber.add_response("describe_change_set", {"Status": "CREATE_COMPLETE", "Changes": [{"Type": "Resource",
                         "ResourceChange": {"Action": "Add", "LogicalResourceId": "LedgerTable",
                                            "ResourceType": "AWS::DynamoDB::Table"}}]}, {"StackName": "sb", "ChangeSetName": ANY})
    stubber.add_response("execute_change_set", {}, {"StackName": "sb", "ChangeSetName": ANY})
    import datetime
    now = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=5)
    events = [{"StackId": "s", "EventId": str(i), "StackName": "sb", "LogicalResourceId": logical,
               "ResourceType": kind, "Timestamp": now + datetime.timedelta(seconds=i), "ResourceStatus": status,
               **({"ResourceStatusReason": reason} if reason else {})}
              for i, (logical, kind, status, reason) in enumerate([
                  ("LedgerTable", "AWS::DynamoDB::Table", "CREATE_IN_PROGRESS", None),
                  ("SkillFunction", "AWS::Lambda::Function", "CREATE_FAILED",
                   "Resource handler returned message: \"Unzipped size must be smaller than 262144000 bytes\""),
                  ("LedgerTable", "AWS::DynamoDB::Table", "CREATE_FAILED", "Resource creation cancelled"),
                  ("sb", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE", None)])]
    stubber.add_response("describe_stack_events", {"StackEvents": list(reversed(events))}, {"StackName": "sb"})
    stubber.add_response("describe_stacks", {"Stacks": [{"StackName": "sb", "CreationTime": now,
                                                         "StackStatus": "ROLLBACK_COMPLETE"}]}, {"StackName": "sb"})
    with stubber, pytest.raises(DeployFailed) as failed:
        tool.deploy("sb", {"FrameworkVersion": "1.2-1"}, template=template)
    assert str(failed.value) == ("sb: ROLLBACK_COMPLETE: SkillFunction (AWS::Lambda::Function) failed: Resource handler "
                                 "returned message: \"Unzipped size must be smaller than 262144000 bytes\"")
    assert any("CREATE_FAILED" in line and "SkillFunction" in line for line in lines)  # progress was shown
    assert DeployFailed("x").exit_code != 0


def test_the_lambda_zip_imports_and_answers_in_a_bare_interpreter(tmp_path):
    """Only the zip and what Lambda's Python runtime provides: no site-packages of ours."""
    path, digest, libraries = build_lambda_zip(tmp_path / "code.zip")
    assert digest == build_lambda_zip(tmp_path / "again.zip")[1]  # reproducible: same inputs, same key
    assert any(lib.startswith("ask-sdk-core==") for lib in libraries)
    assert not any(lib.split("==")[0].lower() in LAMBDA_PROVIDED for lib in libraries)
    unzipped = tmp_path / "task"
    zipfile.ZipFile(path).extractall(unzipped)
    provided = tmp_path / "runtime"
    provided.mkdir()
    import botocore
    site = Path(botocore.__file__).parents[1]
    for name in ("boto3", "botocore", "s3transfer", "jmespath"):
        os.symlink(site / name, provided / name)
    from skill.envelopes import launch_request
    script = (f"import sys, json\nsys.path = [p for p in sys.path if 'site-packages' not in p] + "
              f"[{str(unzipped)!r}, {str(provided)!r}]\n"
              "import lambda_pipeline.lambda_entry as entry, skill\n"
              "answer = skill.lambda_handler(json.loads(sys.stdin.read()), None)\n"
              "print(json.dumps(answer))\n"
              "print(sorted({m.split('.')[0] for m in sys.modules} & {'jinja2', 'numpy', 'sklearn', 'moto'}))\n")
    env = {"PATH": os.environ["PATH"], "AWS_DEFAULT_REGION": REGION, "SKILL_ID": "amzn1.ask.skill.pkg",
           "SAGEBUILD_STATE_MACHINE": "arn:aws:states:us-east-1:123456789012:stateMachine:sb-build",
           "SAGEBUILD_CONFIG_PARAMETER": "/sagebuild/sb/config", "SAGEBUILD_LEDGER_TABLE": "t",
           "SAGEBUILD_ARTIFACTS_BUCKET": "b", "SAGEBUILD_STATUS_TOPIC": "arn:aws:sns:us-east-1:123456789012:s",
           "SAGEBUILD_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/r", "SAGEBUILD_TRAINING_IMAGE": "i"}
    done = subprocess.run([sys.executable, "-I", "-c", script], input=json.dumps(launch_request(skill_id="amzn1.ask.skill.pkg")),
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    answer, heavy = done.stdout.strip().splitlines()
    assert "sage build" in json.loads(answer)["response"]["outputSpeech"]["ssml"].lower()
    assert heavy == "[]"  # none of the local engine's heavy libraries is needed on Lambda


def test_no_region_or_no_credentials_is_one_clear_line(tmp_path, monkeypatch):
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                     "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, out, err = run(tmp_path, "aws", "deploy", "--stack", "sb")
    assert code == 2 and err.strip() == ("sagebuild: no AWS region: pass --region, or set AWS_REGION "
                                         "(or a region in `aws configure`)")
    code, out, err = run(tmp_path, "aws", "destroy", "--stack", "sb", "--region", "eu-west-1", "--yes")
    assert code == 2 and err.strip().startswith("sagebuild: no AWS credentials: run `aws configure`")
    assert "Traceback" not in err


@pytest.mark.parametrize("variant", ["image-build", "notebook"])
def test_the_other_variants_deploy_with_their_extras(account, tmp_path, variant):
    project, _ = account
    (project / "model" / "Dockerfile").write_text("FROM python:3.11-slim\nCOPY . /opt/ml/code/\n")
    from infrastructure.aws import VARIANTS
    tpl, _ = unmodelled(yaml.safe_load(render_template(**VARIANTS[variant])))
    template = tmp_path / f"{variant}.yaml"
    template.write_text(yaml.safe_dump(tpl))
    code, out, err = run(project, "aws", "deploy", "--stack", "sb-x", "--variant", variant, "--template", str(template),
                         "--param", "FrameworkVersion=1.2-1")
    assert code == 0, err
    outputs = {o["OutputKey"]: o["OutputValue"] for o in boto3.client("cloudformation", region_name=REGION).describe_stacks(
        StackName="sb-x")["Stacks"][0]["Outputs"]}
    keys = {o["Key"] for o in boto3.client("s3", region_name=REGION).list_objects_v2(
        Bucket=outputs["ArtifactsBucket"])["Contents"]}
    assert {"code/model/sourcedir.tar.gz", "code/model/image-source.zip"} <= keys  # a Dockerfile: both uploaded
    if variant == "image-build":
        assert outputs["ImageRepositoryUri"].endswith("/sb-x-images")
        env = boto3.client("lambda", region_name=REGION).get_function_configuration(
            FunctionName=outputs["SkillFunctionArn"])["Environment"]["Variables"]
        assert env["SAGEBUILD_IMAGE_REPOSITORY"] == outputs["ImageRepositoryUri"]
    else:
        assert "notebook-instances/openNotebook/" in outputs["NotebookUrl"]
        assert "notebooks/quickstart.ipynb" in keys


def test_stack_names_must_fit_bucket_and_repository_names(account):
    project, template = account
    code, out, err = run(project, "aws", "deploy", "--stack", "SageBuild_Prod")
    assert code == 2 and "use 1 to 30 lowercase letters, digits and hyphens" in err
