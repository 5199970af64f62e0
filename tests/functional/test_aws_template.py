"""The CloudFormation template: cfn-lint clean, least privilege, dev and prod side by side, deploys into moto."""
import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from infrastructure.aws import VARIANTS, render_all, render_template
from lambda_pipeline.config import validate_config
from lambda_pipeline.definition import local_function_arn, render_definition

# Resource "*" only where the AWS API accepts no resource-level permission.
STAR_RESOURCE_ACTIONS = {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}
# Resource types moto 5.2.5 does not model in CloudFormation; the deploy test leaves them out.
from tests.functional.cfn_moto import NOT_IN_MOTO, unmodelled as _unmodelled  # noqa: E402


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request):
    return request.param, yaml.safe_load(render_template(**VARIANTS[request.param]))


def test_cfn_lint_reports_nothing_on_any_variant(tmp_path):
    paths = render_all(tmp_path)
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), *map(str, paths)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""


def test_the_state_machine_is_the_local_definition(variant):
    name, tpl = variant
    sm = tpl["Resources"]["BuildStateMachine"]["Properties"]
    definition = sm["DefinitionString"]
    placeholders = set(re.findall(r"\$\{(\w+)\}", definition))
    assert placeholders == set(sm["DefinitionSubstitutions"])
    as_local = re.sub(r"\$\{(\w+)FunctionArn\}",
                      lambda m: local_function_arn(re.sub(r"(?<!^)([A-Z])", r"_\1", m.group(1)).lower()), definition)
    assert json.loads(as_local) == render_definition(**{"image_build": VARIANTS[name]["image_build"]})
    for placeholder, value in sm["DefinitionSubstitutions"].items():
        assert value == {"Fn::GetAtt": [placeholder.replace("FunctionArn", "Function").join(["Step", ""]), "Arn"]}


def policy_statements(tpl):
    for name, resource in tpl["Resources"].items():
        for policy in resource.get("Properties", {}).get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield name, statement


def test_every_policy_is_least_privilege(variant):
    _, tpl = variant
    statements = list(policy_statements(tpl))
    assert len(statements) > 15
    for role, statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        for action in actions:
            assert action != "*" and not action.endswith(":*"), (role, action)
        if "*" in resources:
            assert set(actions) <= STAR_RESOURCE_ACTIONS, (role, actions)
        for resource in resources:
            text = json.dumps(resource)
            assert not re.search(r":(sagemaker|s3|dynamodb|states|lambda|sns):\*\"", text), (role, text)
    managed = [arn for r in tpl["Resources"].values() for arn in r.get("Properties", {}).get("ManagedPolicyArns", [])]
    assert all("AWSLambdaBasicExecutionRole" in json.dumps(arn) for arn in managed)  # no AdministratorAccess


def test_buckets_are_encrypted_private_and_artifacts_versioned(variant):
    _, tpl = variant
    buckets = {n: r["Properties"] for n, r in tpl["Resources"].items() if r["Type"] == "AWS::S3::Bucket"}
    assert set(buckets) == {"ArtifactsBucket", "DataBucket"}
    for props in buckets.values():
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert all(props["PublicAccessBlockConfiguration"].values())
    assert buckets["ArtifactsBucket"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_skill_permission_is_restricted_to_the_skill_and_outputs_are_there(variant):
    name, tpl = variant
    permission = tpl["Resources"]["SkillPermission"]["Properties"]
    assert permission["Principal"] == "alexa-appkit.amazon.com"
    assert permission["EventSourceToken"] == {"Ref": "AlexaSkillId"}
    outputs = set(tpl["Outputs"])
    assert {"StateMachineArn", "SkillFunctionArn", "LaunchTopicArn", "StatusTopicArn", "DataBucket",
            "ConfigParameterName", "EndpointName", "WebhookUrl"} <= outputs
    assert ("NotebookUrl" in outputs) == (name == "notebook")
    assert ("ImageBuildProject" in tpl["Resources"]) == (name == "image-build")


def test_dev_and_prod_stacks_cannot_collide():
    tpl = yaml.safe_load(render_template())
    named = {}
    for logical, resource in tpl["Resources"].items():
        if resource["Type"] == "AWS::Lambda::Permission":
            continue  # its FunctionName names the function it grants, not a new resource
        for key in ("Name", "BucketName", "DashboardName", "FunctionName", "TableName", "TopicName",
                    "StateMachineName"):
            value = resource.get("Properties", {}).get(key)
            if value is not None:
                named[f"{logical}.{key}"] = json.dumps(value)
    assert named  # some names are explicit...
    for where, value in named.items():
        assert "${AWS::StackName}" in value, where  # ...and each one carries the stack's name


def test_the_template_deploys_into_moto_as_dev_and_prod():
    full = yaml.safe_load(render_template())
    tpl, gone = _unmodelled(full)
    present = {r["Type"] for r in yaml.safe_load(render_template())["Resources"].values()}
    assert {yaml.safe_load(render_template())["Resources"][n]["Type"] for n in gone} == NOT_IN_MOTO & present
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="sagebuild-code")
        code = io.BytesIO()
        with zipfile.ZipFile(code, "w") as archive:
            archive.writestr("skill/__init__.py", "def lambda_handler(event, context):\n    return {}\n")
        s3.put_object(Bucket="sagebuild-code", Key="code.zip", Body=code.getvalue())
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        for stack, branch in (("sagebuild-dev", "dev"), ("sagebuild-prod", "main")):
            parameters = {"CodeBucket": "sagebuild-code", "CodeKey": "code.zip", "TriggerBranch": branch,
                          "TrainingImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1",
                          "ServingImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1",
                          "AlexaSkillId": "amzn1.ask.skill.test"}
            cfn.create_stack(StackName=stack, TemplateBody=json.dumps(tpl), Capabilities=["CAPABILITY_IAM"],
                             Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
            described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
            assert described["StackStatus"] == "CREATE_COMPLETE"
            summaries = cfn.list_stack_resources(StackName=stack)["StackResourceSummaries"]
            created = {r["LogicalResourceId"] for r in summaries if r["LogicalResourceId"]}  # moto lists 2 unnamed extras
            conditional_off = {"ScheduleRule", "LaunchFromSchedulePermission",  # no ScheduleExpression given
                               "CodeCommitPushRule", "LaunchFromCodeCommitPermission",  # no CodeCommit repository
                               "AlexaNotifyRole", "AlexaNotifyFunction", "AlexaNotifyPermission"}  # no AlexaClientId
            assert created == set(tpl["Resources"]) - conditional_off
            outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
            assert outputs["EndpointName"] == f"{stack}-endpoint"
            assert outputs["DataBucket"].startswith(f"{stack}-data-")
            config = boto3.client("ssm", region_name="us-east-1").get_parameter(
                Name=outputs["ConfigParameterName"])["Parameter"]["Value"]
            parsed = validate_config(json.loads(config), "the stack's config")  # a valid SageBuild config
            assert parsed["pipeline"] == stack and parsed["training"]["channels"]["train"].startswith("s3://")
        machines = boto3.client("stepfunctions", region_name="us-east-1").list_state_machines()["stateMachines"]
        assert len(machines) == 2  # one per stack, side by side
        from lambda_pipeline.adapters.aws.ssm_pipelines import SsmPipelines
        directory = SsmPipelines(ttl=0, builds_factory=dict,  # each stack wrote its own entry
                                 boto3_client=boto3.client("ssm", region_name="us-east-1"))
        assert directory.names() == ["sagebuild-dev", "sagebuild-prod"]
        assert {directory.info(n).url for n in directory.names()} == {m["stateMachineArn"] for m in machines}
        prod_env = directory.builds("sagebuild-prod")
        assert prod_env["SAGEBUILD_CONFIG_PARAMETER"] == "/sagebuild/sagebuild-prod/config"
        assert prod_env["SAGEBUILD_LEDGER_TABLE"].startswith("sagebuild-prod-LedgerTable-")
        functions = boto3.client("lambda", region_name="us-east-1").list_functions()["Functions"]
        steps = [n for n in tpl["Resources"] if n.startswith("Step") and n.endswith("Function")]
        assert len(steps) == 12 and len(functions) == 2 * (len(steps) + 4)  # + launch, webhook, state change, skill
        rules = boto3.client("events", region_name="us-east-1").list_rules()["Rules"]
        patterns = [json.loads(r["EventPattern"]) for r in rules if r.get("EventPattern")]
        assert sorted(p["source"][0] for p in patterns) == ["aws.sagemaker"] * 2 + ["aws.states"] * 2


def test_the_skill_reads_the_directory_and_reaches_only_sagebuild_resources(variant):
    _, tpl = variant
    statements = [st for role, st in policy_statements(tpl) if role == "SkillRole"]
    by_action = {a: json.dumps(st["Resource"]) for st in statements
                 for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    assert by_action["ssm:GetParametersByPath"].endswith(':parameter/sagebuild/pipelines"}')
    assert "stateMachine:*-build" in by_action["states:StartExecution"]
    assert "table/*-LedgerTable-*" in by_action["dynamodb:Query"]
    assert tpl["Resources"]["PipelineEntry"]["Properties"]["Name"] == {"Fn::Sub": "/sagebuild/pipelines/${AWS::StackName}"}
    env = tpl["Resources"]["SkillFunction"]["Properties"]["Environment"]["Variables"]
    assert env["SAGEBUILD_PIPELINES_PATH"] == "/sagebuild/pipelines"


def test_cli_renders_every_variant(tmp_path):
    from tests.helpers import cli
    out = cli(tmp_path, "aws", "render", "--out", str(tmp_path / "cfn"))
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "cfn").iterdir()) == sorted(f"{v}.yaml" for v in VARIANTS)
    assert yaml.safe_load((tmp_path / "cfn" / "default.yaml").read_text())["Resources"]["BuildStateMachine"]


def test_alexa_notifications_get_their_secret_and_nothing_more(variant):
    _, tpl = variant
    resources = tpl["Resources"]
    alexa = {n for n, r in resources.items() if n.startswith("Alexa")}
    assert alexa == {"AlexaClientSecret", "AlexaNotifyRole", "AlexaNotifyFunction", "AlexaNotifySubscription",
                     "AlexaNotifyPermission"}
    assert all(resources[n]["Condition"] == "HasAlexaNotifications" for n in alexa)  # off unless AlexaClientId is set
    assert tpl["Conditions"]["HasAlexaNotifications"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlexaClientId"}, ""]}]}
    fn = resources["AlexaNotifyFunction"]["Properties"]
    assert fn["Handler"] == "lambda_pipeline.alexa_entry.notify" and fn["Role"] == {"Fn::GetAtt": ["AlexaNotifyRole", "Arn"]}
    variables = fn["Environment"]["Variables"]
    assert variables["SAGEBUILD_ALEXA_CLIENT_SECRET"] == {"Ref": "AlexaClientSecret"}  # the ARN, never the value
    assert variables["SAGEBUILD_ALEXA_CLIENT_ID"] == {"Ref": "AlexaClientId"}
    assert variables["ALLOWED_USER_IDS"] == {"Ref": "AllowedAlexaUserIds"}
    statements = [s for role, s in policy_statements(tpl) if role == "AlexaNotifyRole"]
    assert {(s["Action"], json.dumps(s["Resource"])) for s in statements} == {
        ("secretsmanager:GetSecretValue", json.dumps({"Ref": "AlexaClientSecret"})),
        ("ssm:GetParameter", json.dumps({"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:"
                                                    "parameter/sagebuild/${AWS::StackName}/config"})),
        ("dynamodb:GetItem", json.dumps({"Fn::GetAtt": ["LedgerTable", "Arn"]}))}
    for role, statement in policy_statements(tpl):  # nobody else may read the Alexa secret
        if role != "AlexaNotifyRole":
            assert "AlexaClientSecret" not in json.dumps(statement), role
    subscription = resources["AlexaNotifySubscription"]["Properties"]
    assert subscription == {"TopicArn": {"Ref": "StatusTopic"}, "Protocol": "lambda",
                            "Endpoint": {"Fn::GetAtt": ["AlexaNotifyFunction", "Arn"]}}
    permission = resources["AlexaNotifyPermission"]["Properties"]
    assert permission["Principal"] == "sns.amazonaws.com" and permission["SourceArn"] == {"Ref": "StatusTopic"}
    assert tpl["Outputs"]["AlexaClientSecretArn"]["Condition"] == "HasAlexaNotifications"


def test_with_an_alexa_client_id_the_notify_function_deploys_into_moto():
    tpl, _ = _unmodelled(yaml.safe_load(render_template()))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="sagebuild-code")
        s3.put_object(Bucket="sagebuild-code", Key="code.zip", Body=b"PK\x05\x06" + b"\x00" * 18)
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        parameters = {"CodeBucket": "sagebuild-code", "CodeKey": "code.zip", "AlexaClientId": "amzn1.application-oa2-client.x",
                      "AllowedAlexaUserIds": "amzn1.ask.account.me",
                      "TrainingImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1",
                      "ServingImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1"}
        cfn.create_stack(StackName="sb-alexa", TemplateBody=json.dumps(tpl), Capabilities=["CAPABILITY_IAM"],
                         Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
        assert cfn.describe_stacks(StackName="sb-alexa")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
        created = {r["LogicalResourceId"] for r in cfn.list_stack_resources(StackName="sb-alexa")["StackResourceSummaries"]}
        assert {"AlexaNotifyRole", "AlexaNotifyFunction", "AlexaNotifyPermission"} <= created
        functions = {f["Handler"]: f for f in boto3.client("lambda", region_name="us-east-1").list_functions()["Functions"]}
        env = functions["lambda_pipeline.alexa_entry.notify"]["Environment"]["Variables"]
        assert env["SAGEBUILD_ALEXA_CLIENT_ID"] == "amzn1.application-oa2-client.x"
        assert env["ALLOWED_USER_IDS"] == "amzn1.ask.account.me"
        assert env["SAGEBUILD_CONFIG_PARAMETER"] == "/sagebuild/sb-alexa/config"
