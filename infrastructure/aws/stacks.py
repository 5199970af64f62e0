"""`sagebuild aws deploy | destroy | skill-package`: one stack per environment, by change set.

deploy: resolve the images, package and upload the Lambda code, create a change set, show it,
execute it, follow the stack's events until it settles, upload the project's code, print the
outputs. A failure names the resource that failed and CloudFormation's reason for it.
"""
from __future__ import annotations

import contextlib
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

import interaction_model
from lambda_pipeline.adapters.aws.stack import describe_stack, stack_outputs, stack_parameters
from lambda_pipeline.errors import ConfigError, DeployFailed, NotFound, SageBuildError

from .images import resolve_images
from .package import build_lambda_zip
from .render import VARIANTS, render_template

__all__ = ["StackTool", "parse_params", "aws_errors"]

_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "DELETE_COMPLETE", "IMPORT_COMPLETE"}
_FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "UPDATE_ROLLBACK_COMPLETE",
           "UPDATE_ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_FAILED", "IMPORT_ROLLBACK_COMPLETE"}
_STACK_NAME = re.compile(r"^[a-z][a-z0-9-]{0,29}$")
_TEMPLATE_BODY_LIMIT = 51_200  # larger templates go through S3 (TemplateURL)


@contextlib.contextmanager
def aws_errors() -> Iterator[None]:
    """botocore's errors as one-line SageBuild errors: no credentials, access denied, no network."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError:
        raise ConfigError("no AWS credentials: run `aws configure`, or set AWS_PROFILE (`sagebuild aws` commands "
                          "also take --profile), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise SageBuildError(f"AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}") from None
    except BotoCoreError as exc:
        raise SageBuildError(f"AWS could not be reached: {exc}") from None


def parse_params(pairs: list[str]) -> dict[str, str]:
    """``["K=V", ...]`` -> dict; a pair without ``=`` is a clear error."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--param {pair!r}: expected KEY=VALUE, e.g. --param UseSpotTraining=true")
        out[key.strip()] = value
    return out


def _framework_params(project: Path, params: dict[str, str], say: Callable[[str], None]) -> None:
    """``Framework`` and ``FrameworkVersion`` from the project's ``training.framework`` and
    ``training.framework_version``, so the stack's images match what the project trains with
    locally. A ``--param`` may only differ where the config leaves the key unset."""
    from lambda_pipeline.adapters.local.config_store import CONFIG_FILE
    from lambda_pipeline.config import load_config_text, strip_comments
    from lambda_pipeline.frameworks import resolve_framework
    path = project / CONFIG_FILE
    if not path.is_file():
        return
    text = path.read_text()
    training = load_config_text(text, str(path))["training"]
    explicit = json.loads(strip_comments(text)).get("training", {})
    choice = resolve_framework(training["framework"], training["framework_version"])
    given = params.get("Framework")
    if given is not None and given != choice.aws_framework:
        if "framework" in explicit:
            raise ConfigError(f"--param Framework={given} contradicts training.framework {choice.framework!r} in "
                              f"{CONFIG_FILE}: change one of them")
        return  # no framework in the config: the parameter decides, as before
    params["Framework"] = choice.aws_framework
    if not choice.version:
        return  # custom: the scikit-learn image's newest version, or the parameter's
    given = params.get("FrameworkVersion")
    if given is not None and given != choice.version:
        if explicit.get("framework_version"):
            raise ConfigError(f"--param FrameworkVersion={given} contradicts training.framework_version "
                              f"{choice.version!r} in {CONFIG_FILE}: change one of them")
        return
    params["FrameworkVersion"] = choice.version
    say(f"framework: {choice.framework} {choice.version} (training.framework in {CONFIG_FILE})")


class StackTool:
    """Deploys, destroys and describes SageBuild stacks with one boto3 session.

    Args:
        session: a boto3 Session (region and credentials as the user configured them).
        say: where progress lines go.
        poll_seconds: how often to look at the stack while it changes.
    """

    def __init__(self, session: Any, say: Callable[[str], None] = print, poll_seconds: float = 5.0,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self._session = session
        self._say = say
        self._poll = poll_seconds
        self._sleep = sleep
        self.region = session.region_name
        if not self.region:
            raise ConfigError("no AWS region: pass --region, or set AWS_REGION (or a region in `aws configure`)")
        self.cfn = session.client("cloudformation")
        self.s3 = session.client("s3")

    # -- deploy ---------------------------------------------------------------------------
    def deploy(self, stack: str, params: dict[str, str], variant: str = "default", template: Path | None = None,
               project: Path | None = None, write_config: bool = True, upload_data: bool = False,
               framework_from: Path | None = None) -> dict[str, str]:
        """Create or update the stack; then, with a ``project``, put its config and code (and, with
        ``upload_data``, its data) where the stack's builds look. The images follow the framework
        of the config in ``framework_from`` (default ``project``). Returns the stack's outputs."""
        if not _STACK_NAME.match(stack):
            raise ConfigError(f"stack name {stack!r}: use 1 to 30 lowercase letters, digits and hyphens, starting "
                              "with a letter (it is part of bucket and repository names, which allow no more)")
        if variant not in VARIANTS:
            raise ConfigError(f"unknown variant {variant!r}: one of {', '.join(VARIANTS)}")
        body = template.read_text() if template else render_template(**VARIANTS[variant])
        known = set((yaml.safe_load(body) or {}).get("Parameters", {}))
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"unknown parameter(s) {', '.join(unknown)}; the template takes: {', '.join(sorted(known))}")
        params = dict(params)
        config_dir = framework_from or project
        if config_dir is not None:
            _framework_params(config_dir, params, self._say)
        self._images(params)
        bucket = self._staging_bucket()
        with tempfile.TemporaryDirectory() as tmp:
            self._say("packaging the Lambda code ...")
            zip_path, digest, libraries = build_lambda_zip(Path(tmp) / "code.zip")
            key = f"sagebuild/{stack}/lambda-{digest[:16]}.zip"
            self.s3.upload_file(str(zip_path), bucket, key)
            self._say(f"uploaded s3://{bucket}/{key} ({zip_path.stat().st_size // 1024} KiB; {', '.join(libraries)})")
        params.update(CodeBucket=bucket, CodeKey=key)
        template_args = self._template_args(body, bucket, stack)
        existing = self._stack(stack)
        if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
            raise DeployFailed(f"stack {stack} failed to create earlier and can only be deleted: "
                               f"`sagebuild aws destroy --stack {stack}`, then deploy again")
        kind = "UPDATE" if existing is not None and existing["StackStatus"] != "REVIEW_IN_PROGRESS" else "CREATE"
        change_set = f"sagebuild-{int(time.time())}"
        self.cfn.create_change_set(StackName=stack, ChangeSetName=change_set, ChangeSetType=kind,
                                   Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(params.items())],
                                   Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
                                   Tags=[{"Key": "sagebuild:stack", "Value": stack}], **template_args)
        changes = self._wait_change_set(stack, change_set)
        if changes is None:
            self._say("no changes: the stack is up to date")
        else:
            self._say(f"change set {change_set} ({kind.lower()}): {len(changes)} change(s)")
            for change in changes:
                rc = change["ResourceChange"]
                self._say(f"  {rc['Action']:<7} {rc['LogicalResourceId']} ({rc['ResourceType']})")
            since = time.time() - 1
            self.cfn.execute_change_set(StackName=stack, ChangeSetName=change_set)
            self._follow(stack, since)
        described = self._described(stack)
        outputs = stack_outputs(described)
        if project is not None:
            from .project_upload import ProjectUploader
            ProjectUploader(self._session, self._say).upload(project, stack, outputs,
                                                             {**stack_parameters(described), **params},
                                                             write_config=write_config, upload_data=upload_data)
        return outputs

    def _images(self, params: dict[str, str]) -> None:
        if params.get("TrainingImageUri"):
            params.setdefault("ServingImageUri", params["TrainingImageUri"])
            return
        framework = params.get("Framework", "sklearn")
        choice = resolve_images(framework, self.region, params.get("FrameworkVersion") or None,
                                params.get("Algorithm") or None, params.get("TrainingInstanceType", "ml.m5.large"),
                                params.get("HostingInstanceType", "ml.t2.medium"))
        if choice.training:
            params.update(TrainingImageUri=choice.training, ServingImageUri=choice.serving,
                          FrameworkVersion=choice.version)
            self._say(f"images ({choice.framework} {choice.version} in {self.region}, from the SageMaker SDK catalogue):")
            self._say(f"  training {choice.training}")
            self._say(f"  serving  {choice.serving}")

    def _staging_bucket(self) -> str:
        """``sagebuild-staging-<account>-<region>``: Lambda code and large templates, per account and region."""
        account = self._session.client("sts").get_caller_identity()["Account"]
        bucket = f"sagebuild-staging-{account}-{self.region}"
        try:
            self.s3.head_bucket(Bucket=bucket)
        except Exception:
            self._say(f"creating the staging bucket {bucket}")
            extra = {} if self.region == "us-east-1" else {
                "CreateBucketConfiguration": {"LocationConstraint": self.region}}
            self.s3.create_bucket(Bucket=bucket, **extra)
            self.s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
                "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True})
            self.s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]})
        return bucket

    def _template_args(self, body: str, bucket: str, stack: str) -> dict[str, str]:
        if len(body.encode()) <= _TEMPLATE_BODY_LIMIT:
            return {"TemplateBody": body}
        key = f"sagebuild/{stack}/template-{int(time.time())}.yaml"
        self.s3.put_object(Bucket=bucket, Key=key, Body=body.encode())
        return {"TemplateURL": f"https://{bucket}.s3.{self.region}.amazonaws.com/{key}"}

    def _wait_change_set(self, stack: str, name: str) -> list[dict[str, Any]] | None:
        while True:
            desc = self.cfn.describe_change_set(StackName=stack, ChangeSetName=name)
            status = desc["Status"]
            if status == "CREATE_COMPLETE":
                return desc.get("Changes", [])
            if status == "FAILED":
                reason = desc.get("StatusReason", "")
                if "didn't contain changes" in reason or "No updates are to be performed" in reason:
                    self.cfn.delete_change_set(StackName=stack, ChangeSetName=name)
                    return None
                raise DeployFailed(f"the change set for {stack} failed: {reason}")
            self._sleep(self._poll)

    def _follow(self, stack: str, since: float) -> dict[str, Any]:
        """Print the stack's new events until it settles; raise with the first failure's reason."""
        seen: set[str] = set()
        while True:
            events = self._events(stack)
            fresh = [e for e in reversed(events) if e["EventId"] not in seen
                     and e["Timestamp"].timestamp() >= since]
            for event in fresh:
                seen.add(event["EventId"])
                reason = f" - {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
                self._say(f"  {event['Timestamp']:%H:%M:%S} {event['ResourceStatus']:<20} "
                          f"{event['LogicalResourceId']}{reason}")
            desc = self._stack(stack)
            status = desc["StackStatus"] if desc else "DELETE_COMPLETE"
            if status in _DONE:
                self._say(f"{stack}: {status}")
                return desc or {}
            if status in _FAILED:
                raise DeployFailed(f"{stack}: {status}: {self._first_failure(events, since)}")
            self._sleep(self._poll)

    def _first_failure(self, events: list[dict[str, Any]], since: float) -> str:
        for event in reversed(events):  # oldest first: the first failure caused the rest
            if event["ResourceStatus"].endswith("_FAILED") and event["Timestamp"].timestamp() >= since \
                    and "cancelled" not in event.get("ResourceStatusReason", "").lower():
                return (f"{event['LogicalResourceId']} ({event.get('ResourceType')}) failed: "
                        f"{event.get('ResourceStatusReason', 'no reason given')}")
        return "no resource reported a reason; see the stack's events in the console"

    def _events(self, stack: str) -> list[dict[str, Any]]:
        try:
            return self.cfn.describe_stack_events(StackName=stack)["StackEvents"]
        except Exception:
            return []

    def _stack(self, stack: str) -> dict[str, Any] | None:
        return describe_stack(self.cfn, stack)

    def _described(self, stack: str) -> dict[str, Any]:
        desc = self._stack(stack)
        if desc is None:
            raise NotFound(f"no stack {stack!r} in {self.region}")
        return desc

    def outputs(self, stack: str) -> dict[str, str]:
        return stack_outputs(self._described(stack))

    # -- destroy --------------------------------------------------------------------------
    def destroy(self, stack: str) -> None:
        """Empty the stack's buckets, delete the endpoint, models and configs its builds made, then the stack."""
        desc = self._described(stack)
        outputs, params = stack_outputs(desc), stack_parameters(desc)
        buckets = [outputs["ArtifactsBucket"]] if outputs.get("ArtifactsBucket") else []
        if outputs.get("DataBucket") and not params.get("DataBucketName"):
            buckets.append(outputs["DataBucket"])  # created by the stack; a bucket you brought is left alone
        for bucket in buckets:
            self._say(f"emptying s3://{bucket}: {self._empty(bucket)} object version(s) deleted")
        self._delete_hosting(stack, outputs.get("EndpointName"))
        since = time.time() - 1
        self.cfn.delete_stack(StackName=stack)
        self._follow(stack, since)

    def _empty(self, bucket: str) -> int:
        count = 0
        try:
            pages = self.s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
            for page in pages:
                doomed = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                          for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
                for start in range(0, len(doomed), 1000):
                    self.s3.delete_objects(Bucket=bucket, Delete={"Objects": doomed[start:start + 1000], "Quiet": True})
                count += len(doomed)
        except Exception as exc:
            if "NoSuchBucket" in str(exc):
                return 0
            raise
        return count

    def _delete_hosting(self, stack: str, endpoint: str | None) -> None:
        sm = self._session.client("sagemaker")
        if endpoint:
            try:
                sm.delete_endpoint(EndpointName=endpoint)
                self._say(f"deleted endpoint {endpoint}")
            except Exception as exc:
                if "Could not find endpoint" not in str(exc):
                    raise
        prefix = f"{stack}-"
        for config in _names(sm.list_endpoint_configs, "EndpointConfigs", "EndpointConfigName", prefix):
            sm.delete_endpoint_config(EndpointConfigName=config)
            self._say(f"deleted endpoint config {config}")
        for model in _names(sm.list_models, "Models", "ModelName", prefix):
            sm.delete_model(ModelName=model)
            self._say(f"deleted model {model}")

    # -- skill package ------------------------------------------------------------------------
    def skill_package(self, stack: str, out: Path) -> Path:
        """An ASK CLI (v2) project: ask-resources.json and skill-package/ with the function's ARN."""
        arn = self.outputs(stack)["SkillFunctionArn"]
        manifest = interaction_model.manifest()
        manifest["manifest"]["apis"]["custom"]["endpoint"] = {"uri": arn}
        if "events" in manifest["manifest"]:  # skill events (notification opt-ins) go to the same function
            manifest["manifest"]["events"]["endpoint"] = {"uri": arn}
        package = out / "skill-package"
        (package / "interactionModels" / "custom").mkdir(parents=True, exist_ok=True)
        (package / "skill.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        for locale in interaction_model.model_locales():
            (package / "interactionModels" / "custom" / f"{locale}.json").write_text(
                interaction_model.model_text(locale), encoding="utf-8")
        (out / "ask-resources.json").write_text(json.dumps({
            "askcliResourcesVersion": "2020-03-31",
            "profiles": {"default": {"skillMetadata": {"src": "./skill-package"}}}}, indent=2) + "\n")
        return out


def _names(lister: Callable[..., dict[str, Any]], key: str, field: str, prefix: str) -> list[str]:
    names, token = [], None
    while True:
        page = lister(NameContains=prefix, MaxResults=100, **({"NextToken": token} if token else {}))
        names += [item[field] for item in page.get(key, []) if item[field].startswith(prefix)]
        token = page.get("NextToken")
        if not token:
            return names
