"""TrainingPlatform and HostingPlatform on SageMaker (boto3).

The step handlers already speak SageMaker's request shapes (the local platform copies them), so
these adapters add what only AWS needs — the role, the image, spot training, the instance
types, the blue/green update policy — and translate botocore errors at the boundary.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, Callable

from ...errors import DeployFailed, NotFound, SageBuildError
from ...model import LogChunk
from .boto import client as _client, error_code, translate

__all__ = ["SageMakerTraining", "SageMakerHosting"]

logger = logging.getLogger(__name__)
class SageMakerTraining:
    """Training jobs on SageMaker.

    Args:
        role_arn: the execution role SageMaker assumes.
        image_uri: the training image (resolved per region and framework version at deploy time).
        instance_count: training instances.
        use_spot: managed spot training; the job may wait up to ``spot_wait_factor`` x its max runtime.
    """

    def __init__(self, role_arn: str, image_uri: str, instance_count: int = 1, use_spot: bool = False,
                 spot_wait_factor: float = 2.0, boto3_client: Any = None, boto3_session: Any = None,
                 logs_client: Any = None) -> None:
        self._sm = _client("sagemaker", boto3_client, boto3_session)
        self._logs = logs_client
        self._session = boto3_session
        self.role_arn, self.image_uri = role_arn, image_uri
        self.instance_count, self.use_spot, self.spot_wait_factor = instance_count, use_spot, spot_wait_factor

    def request_for(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The CreateTrainingJob request for a spec made by the step handlers."""
        request = copy.deepcopy(spec)
        request["RoleArn"] = self.role_arn
        algorithm = request["AlgorithmSpecification"]
        algorithm["TrainingImage"] = algorithm.get("TrainingImage") or self.image_uri
        request["ResourceConfig"]["InstanceCount"] = self.instance_count
        if request["ResourceConfig"]["InstanceType"] == "local":
            raise SageBuildError("training.instance_type is 'local': set an ml.* instance type for AWS")
        if self.use_spot:
            runtime = request["StoppingCondition"]["MaxRuntimeInSeconds"]
            request["EnableManagedSpotTraining"] = True
            request["StoppingCondition"]["MaxWaitTimeInSeconds"] = int(runtime * self.spot_wait_factor)
        return request

    def create_training_job(self, spec: dict[str, Any]) -> str:
        request = self.request_for(spec)  # domain errors first, before any call to AWS
        try:
            self._sm.create_training_job(**request)
        except Exception as exc:
            raise translate(exc, f"could not start training job {spec['TrainingJobName']}") from exc
        return spec["TrainingJobName"]

    def describe_training_job(self, name: str) -> dict[str, Any]:
        try:
            return self._sm.describe_training_job(TrainingJobName=name)
        except Exception as exc:
            if "does not exist" in str(exc) or "Requested resource not found" in str(exc):
                raise NotFound(f"no training job {name!r}") from exc
            raise translate(exc, f"could not describe training job {name}") from exc

    def stop_training_job(self, name: str) -> None:
        try:
            self._sm.stop_training_job(TrainingJobName=name)
        except Exception as exc:
            if error_code(exc) == "ValidationException":  # already stopped or ended: nothing to do
                logger.info("training job already ended", extra={"job": name})
                return
            raise translate(exc, f"could not stop training job {name}") from exc

    def active_jobs(self) -> set[str]:
        """Names of the jobs still InProgress (one page: the most recent 100)."""
        try:
            answer = self._sm.list_training_jobs(StatusEquals="InProgress", MaxResults=100)
        except Exception as exc:
            raise translate(exc, "could not list training jobs") from exc
        return {job["TrainingJobName"] for job in answer.get("TrainingJobSummaries", [])}

    def read_log(self, name: str, offset: int = 0) -> LogChunk:
        """The job's CloudWatch log; ``offset`` counts events already read."""
        logs = self._logs or _client("logs", None, self._session)
        group = "/aws/sagemaker/TrainingJobs"
        try:
            streams = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=f"{name}/")["logStreams"]
            events: list[str] = []
            for stream in streams:
                events += [e["message"] for e in logs.get_log_events(logGroupName=group, startFromHead=True,
                                                                      logStreamName=stream["logStreamName"])["events"]]
        except Exception as exc:
            raise translate(exc, f"could not read the log of {name}") from exc
        done = self.describe_training_job(name)["TrainingJobStatus"] not in ("InProgress", "Stopping")
        new = events[offset:]
        return LogChunk(text="".join(line if line.endswith("\n") else line + "\n" for line in new),
                        next_offset=offset + len(new), complete=done)


class SageMakerHosting:
    """Models, endpoint configs and endpoints on SageMaker.

    Args:
        role_arn: the execution role of the model containers.
        image_uri: the serving image.
        instance_type, instance_count: of the production variant.
        traffic: the blue/green update policy: ``{"type": "ALL_AT_ONCE" | "CANARY" | "LINEAR",
            "percent": 10, "wait_seconds": 300, "alarms": ["..."]}``; alarms enable auto-rollback.
        workers: model-server workers per instance (``deploy.workers``), or a callable read when a
            model is created; set as the container's ``SAGEMAKER_MODEL_SERVER_WORKERS``. None
            leaves the container's default, the instance's CPU count.
    """

    def __init__(self, role_arn: str, image_uri: str, instance_type: str = "ml.t2.medium", instance_count: int = 1,
                 traffic: dict[str, Any] | None = None, boto3_client: Any = None, boto3_session: Any = None,
                 runtime_client: Any = None, workers: int | None | Callable[[], int | None] = None) -> None:
        self._workers = workers
        self._sm = _client("sagemaker", boto3_client, boto3_session)
        self._runtime = runtime_client
        self._session = boto3_session
        self.role_arn, self.image_uri = role_arn, image_uri
        self.instance_type, self.instance_count = instance_type, instance_count
        self.traffic = traffic or {"type": "ALL_AT_ONCE"}

    def create_model(self, name: str, artifact_uri: str, code_uri: str | None, entry_point: str | None,
                     image_uri: str | None = None) -> None:
        """``image_uri``: the build's own image (image builds); default the stack's serving image."""
        container: dict[str, Any] = {"Image": image_uri or self.image_uri, "ModelDataUrl": artifact_uri}
        if code_uri and entry_point:
            container["Environment"] = {"SAGEMAKER_PROGRAM": entry_point, "SAGEMAKER_SUBMIT_DIRECTORY": code_uri}
        workers = self._workers() if callable(self._workers) else self._workers
        if workers is not None:
            container.setdefault("Environment", {})["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(workers)
        try:
            self._sm.create_model(ModelName=name, ExecutionRoleArn=self.role_arn, PrimaryContainer=container)
        except Exception as exc:
            if "Cannot create already existing model" in str(exc):
                return  # the model of this version exists already (a rollback redeploys it)
            raise translate(exc, f"could not create model {name}") from exc

    def create_endpoint_config(self, name: str, model_name: str) -> None:
        try:
            self._sm.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[{
                "VariantName": "AllTraffic", "ModelName": model_name, "InitialInstanceCount": self.instance_count,
                "InstanceType": self.instance_type, "InitialVariantWeight": 1.0}])
        except Exception as exc:
            if "already existing endpoint configuration" in str(exc):
                return  # a retried deployment: the same config, made by its first attempt
            raise translate(exc, f"could not create endpoint config {name}") from exc

    def create_endpoint(self, name: str, config_name: str, port: int = 0) -> None:
        try:
            self._sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name)
        except Exception as exc:
            raise translate(exc, f"could not create endpoint {name}") from exc

    def deployment_config(self, traffic: dict[str, Any] | None = None) -> dict[str, Any]:
        """SageMaker's blue/green update policy, with alarm-based auto-rollback when alarms are set.

        ``traffic`` is the build's ``deploy.traffic`` (type ``all_at_once``/``canary``/``linear``,
        any case); without it the adapter's default."""
        traffic = traffic or self.traffic
        kind = str(traffic.get("type", "ALL_AT_ONCE")).upper()
        routing: dict[str, Any] = {"Type": kind, "WaitIntervalInSeconds": int(traffic.get("wait_seconds", 300))}
        if kind == "CANARY":
            routing["CanarySize"] = {"Type": "CAPACITY_PERCENT", "Value": int(traffic.get("percent", 10))}
        elif kind == "LINEAR":
            routing["LinearStepSize"] = {"Type": "CAPACITY_PERCENT", "Value": int(traffic.get("percent", 10))}
        config: dict[str, Any] = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": routing,
                                                            "TerminationWaitInSeconds": 120,
                                                            "MaximumExecutionTimeoutInSeconds": 3600}}
        if traffic.get("alarms"):
            config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": a} for a in traffic["alarms"]]}
        return config

    def update_endpoint(self, name: str, config_name: str, traffic: dict[str, Any] | None = None) -> None:
        try:
            self._sm.update_endpoint(EndpointName=name, EndpointConfigName=config_name,
                                     DeploymentConfig=self.deployment_config(traffic))
        except Exception as exc:
            raise translate(exc, f"could not update endpoint {name}") from exc

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        try:
            return self._sm.describe_endpoint(EndpointName=name)
        except Exception as exc:
            if "Could not find endpoint" in str(exc):
                return None
            raise translate(exc, f"could not describe endpoint {name}") from exc

    def list_endpoints(self) -> list[dict[str, Any]]:
        """Summaries (``EndpointName``, ``EndpointStatus``, ``LastModifiedTime``) of the account's
        endpoints in this region, newest first, at most 1,000."""
        try:
            pages = self._sm.get_paginator("list_endpoints").paginate(
                SortBy="CreationTime", SortOrder="Descending", PaginationConfig={"MaxItems": 1000})
            return [e for page in pages for e in page["Endpoints"]]
        except Exception as exc:
            raise translate(exc, "could not list endpoints") from exc

    def ping_endpoint(self, name: str) -> bool:
        """SageMaker pings the container itself; InService is what the outside can see."""
        desc = self.describe_endpoint(name)
        return bool(desc and desc["EndpointStatus"] == "InService")

    def invoke_endpoint(self, name: str, body: bytes, content_type: str,
                        accept: str = "application/json") -> tuple[int, bytes]:
        runtime = self._runtime or _client("sagemaker-runtime", None, self._session)
        try:
            answer = runtime.invoke_endpoint(EndpointName=name, Body=body, ContentType=content_type,
                                             Accept=accept)
            return 200, answer["Body"].read()
        except Exception as exc:
            error = getattr(exc, "response", {})
            status = int(error.get("OriginalStatusCode") or error.get("ResponseMetadata", {}).get("HTTPStatusCode") or 500)
            return status, error.get("Error", {}).get("Message", str(exc)).encode()

    def cancel_update(self, name: str, config_name: str) -> bool:
        """SageMaker cannot cancel an update in flight; its blue/green policy rolls back on alarms."""
        return False

    def delete_endpoint(self, name: str) -> None:
        try:
            self._sm.delete_endpoint(EndpointName=name)
        except Exception as exc:
            if "Could not find endpoint" in str(exc):
                return
            raise DeployFailed(f"could not delete endpoint {name}: {exc}") from exc
