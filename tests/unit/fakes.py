"""In-memory fake ports for unit tests of the step handlers and the build service.

No engine, no processes, no network: each fake keeps its world in dicts, records every call
(``calls``: ``(method, args)`` in order) and raises what a test puts in ``raises[method]``.
Tests steer them (a training job's status, an endpoint's status and config, a failing
notifier) and read what happened. The ledger is the real :class:`SqliteLedger` on a temporary
file: it is real, tested on its own, and a whole build's records take a few milliseconds.

The ``_conforms`` block at the end is read by mypy (``tests/unit/fakes.py`` is in the
``[tool.mypy] files``), so a fake that drifts from its port fails the build like an adapter.

Example::

    fakes = Fakes.create(tmp_path, {"pipeline": "wine"})
    build = fakes.running_build()
    fakes.hosting.put_endpoint("wine", "wine-v1-abc123")
    out = roll_back(fakes.ports, {"build_id": build.id, ...})
"""
from __future__ import annotations

import builtins
import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambda_pipeline.adapters.local.ledger import SqliteLedger
from lambda_pipeline.config import validate_config
from lambda_pipeline.errors import NotFound, SageBuildError
from lambda_pipeline.model import Build, BuildStatus, LogChunk
from lambda_pipeline.ports import Ports

__all__ = ["Fakes", "FakeConfigStore", "FakeArtifactStore", "FakeSourceStore", "FakeTraining", "FakeHosting",
           "FakeImageBuilder", "FakeNotifier", "Recorder"]


class Recorder:
    """Call recording and failure injection shared by the fakes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.raises: dict[str, BaseException] = {}

    def _call(self, method: str, *args: Any) -> None:
        self.calls.append((method, args))
        error = self.raises.get(method)
        if error is not None:
            raise error

    def called(self, method: str) -> list[tuple[Any, ...]]:
        """The arguments of every call of ``method``, in order."""
        return [args for name, args in self.calls if name == method]

    def methods(self) -> list[str]:
        """The methods called, in order."""
        return [name for name, _ in self.calls]


class FakeConfigStore(Recorder):
    """The pipeline config, validated like the real stores do."""

    def __init__(self, config: dict[str, Any], project: str = "/project") -> None:
        super().__init__()
        self.config = validate_config(config)
        self.project = project

    def load(self) -> dict[str, Any]:
        self._call("load")
        return copy.deepcopy(self.config)

    def project_dir(self) -> str:
        return self.project


class FakeArtifactStore(Recorder):
    """Keys -> the local file put there; ``mem://artifacts/<key>`` URIs."""

    def __init__(self) -> None:
        super().__init__()
        self.files: dict[str, str] = {}

    def put_file(self, key: str, path: str) -> str:
        self._call("put_file", key, path)
        self.files[key] = path
        return self.uri(key)

    def get_file(self, key: str, path: str) -> None:
        self._call("get_file", key, path)
        if key not in self.files:
            raise NotFound(f"no artifact {key!r}")
        Path(path).write_bytes(Path(self.files[key]).read_bytes())

    def uri(self, key: str) -> str:
        return f"mem://artifacts/{key}"

    def exists(self, key: str) -> bool:
        return key in self.files


class FakeSourceStore(Recorder):
    """Code and image packages as URIs named after their folder; data refs with a fixed digest."""

    def package_code(self, source_dir: str) -> str:
        self._call("package_code", source_dir)
        return f"mem://code/{source_dir}/sourcedir.tar.gz"

    def package_image_source(self, source_dir: str) -> str:
        self._call("package_image_source", source_dir)
        return f"bucket/image-source/{source_dir}.zip"

    def channel_uri(self, location: str) -> str:
        return f"mem://data/{location}"

    def data_ref(self, location: str) -> dict[str, Any]:
        self._call("data_ref", location)
        return {"uri": self.channel_uri(location), "digest": f"digest-of-{location}"}


class FakeTraining(Recorder):
    """Training jobs in SageMaker's ``DescribeTrainingJob`` shape; a test moves them on with
    :meth:`complete`, :meth:`fail` or :meth:`set_status`."""

    def __init__(self) -> None:
        super().__init__()
        self.jobs: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, dict[str, Any]] = {}
        self.logs: dict[str, str] = {}

    def create_training_job(self, spec: dict[str, Any]) -> str:
        self._call("create_training_job", spec)
        name = str(spec["TrainingJobName"])
        self.specs[name] = spec
        self.jobs[name] = {"TrainingJobName": name, "TrainingJobStatus": "InProgress", "SecondaryStatus": "Starting"}
        return name

    def describe_training_job(self, name: str) -> dict[str, Any]:
        self._call("describe_training_job", name)
        if name not in self.jobs:
            raise NotFound(f"no training job {name!r}")
        return copy.deepcopy(self.jobs[name])

    def stop_training_job(self, name: str) -> None:
        self._call("stop_training_job", name)
        job = self.jobs.get(name)
        if job is not None and job["TrainingJobStatus"] == "InProgress":
            job.update(TrainingJobStatus="Stopped", SecondaryStatus="Stopped")

    def read_log(self, name: str, offset: int = 0) -> LogChunk:
        text = self.logs.get(name, "")
        done = self.jobs.get(name, {}).get("TrainingJobStatus") not in ("InProgress", "Stopping")
        return LogChunk(text=text[offset:], next_offset=len(text), complete=done)

    def active_jobs(self) -> set[str]:
        return {n for n, j in self.jobs.items() if j["TrainingJobStatus"] in ("InProgress", "Stopping")}

    # -- steering -------------------------------------------------------------------------
    def set_status(self, name: str, status: str, **fields: Any) -> None:
        self.jobs[name].update(TrainingJobStatus=status, **fields)

    def complete(self, name: str, metrics: dict[str, float], artifact: str | None = None) -> str:
        """The job ends Completed with these final metrics; returns its artifact URI."""
        artifact = artifact or f"mem://artifacts/training-jobs/{name}/output/model.tar.gz"
        self.set_status(name, "Completed", SecondaryStatus="Completed",
                        FinalMetricDataList=[{"MetricName": k, "Value": v} for k, v in metrics.items()],
                        ModelArtifacts={"S3ModelArtifacts": artifact})
        return artifact

    def fail(self, name: str, reason: str) -> None:
        self.set_status(name, "Failed", SecondaryStatus="Failed", FailureReason=reason)


class FakeHosting(Recorder):
    """Endpoints in SageMaker's ``DescribeEndpoint`` shape. An update keeps serving the old config
    (``PendingEndpointConfigName`` is the new one) until a test calls :meth:`settle` or
    :meth:`fail_update`, as SageMaker and the local platform do."""

    def __init__(self) -> None:
        super().__init__()
        self.models: dict[str, dict[str, Any]] = {}
        self.configs: dict[str, str] = {}
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.ping: dict[str, bool] = {}
        self.answer: tuple[int, bytes] = (200, b'{"predictions": [1]}')

    def create_model(self, name: str, artifact_uri: str, code_uri: str | None,
                     entry_point: str | None, image_uri: str | None = None) -> None:
        self._call("create_model", name, artifact_uri, code_uri, entry_point, image_uri)
        self.models[name] = {"artifact": artifact_uri, "code": code_uri, "entry_point": entry_point,
                             "image_uri": image_uri}

    def create_endpoint_config(self, name: str, model_name: str) -> None:
        self._call("create_endpoint_config", name, model_name)
        self.configs[name] = model_name

    def create_endpoint(self, name: str, config_name: str, port: int = 0) -> None:
        self._call("create_endpoint", name, config_name, port)
        self.endpoints[name] = {"EndpointName": name, "EndpointStatus": "Creating", "EndpointConfigName": None,
                                "PendingEndpointConfigName": config_name}

    def update_endpoint(self, name: str, config_name: str, traffic: dict[str, Any] | None = None) -> None:
        self._call("update_endpoint", name, config_name, traffic)
        if name not in self.endpoints:
            raise NotFound(f"no endpoint {name!r}")
        if self.endpoints[name]["EndpointStatus"] in ("Creating", "Updating"):  # both platforms refuse it
            raise SageBuildError(f"endpoint {name!r} is {self.endpoints[name]['EndpointStatus']}; wait for it")
        self.endpoints[name].update(EndpointStatus="Updating", PendingEndpointConfigName=config_name)
        self.endpoints[name].pop("FailureReason", None)

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        self._call("describe_endpoint", name)
        desc = self.endpoints.get(name)
        if desc is None:
            return None
        out = {k: v for k, v in desc.items() if v is not None}
        out["Url"] = f"http://fake/{name}"
        return out

    def list_endpoints(self) -> builtins.list[dict[str, Any]]:
        return [d for d in (self.describe_endpoint(n) for n in sorted(self.endpoints)) if d]

    def ping_endpoint(self, name: str) -> bool:
        self._call("ping_endpoint", name)
        return self.ping.get(name, name in self.endpoints)

    def cancel_update(self, name: str, config_name: str) -> bool:
        """Undo a pending update to ``config_name``: the old config keeps serving. True if one was undone."""
        self._call("cancel_update", name, config_name)
        desc = self.endpoints.get(name)
        if desc is None or desc.get("PendingEndpointConfigName") != config_name:
            return False
        desc.update(PendingEndpointConfigName=None,
                    EndpointStatus="InService" if desc.get("EndpointConfigName") else "Failed")
        return True

    def delete_endpoint(self, name: str) -> None:
        self._call("delete_endpoint", name)
        self.endpoints.pop(name, None)

    def invoke_endpoint(self, name: str, body: bytes, content_type: str,
                        accept: str = "application/json") -> tuple[int, bytes]:
        self._call("invoke_endpoint", name, body, content_type, accept)
        return self.answer

    # -- steering -------------------------------------------------------------------------
    def put_endpoint(self, name: str, config_name: str | None, status: str = "InService", **fields: Any) -> None:
        """An endpoint that exists already, serving ``config_name``."""
        self.endpoints[name] = {"EndpointName": name, "EndpointStatus": status, "EndpointConfigName": config_name,
                                **fields}

    def settle(self, name: str) -> None:
        """The pending create or update finished: the new config serves."""
        desc = self.endpoints[name]
        desc.update(EndpointStatus="InService", EndpointConfigName=desc.pop("PendingEndpointConfigName", None)
                    or desc.get("EndpointConfigName"))

    def fail_update(self, name: str, reason: str, status: str = "InService") -> None:
        """The pending update failed: the old config keeps serving (``status`` InService) or the
        endpoint is Failed, with ``reason``."""
        desc = self.endpoints[name]
        desc.pop("PendingEndpointConfigName", None)
        desc.update(EndpointStatus=status, FailureReason=reason)


class FakeImageBuilder(Recorder):
    """Image builds in the CodeBuild adapter's shape: ``{"status": InProgress|Succeeded|Failed}``."""

    def __init__(self, repository: str = "123.dkr.ecr.us-east-1.amazonaws.com/sagebuild") -> None:
        super().__init__()
        self.repository = repository
        self.builds: dict[str, dict[str, Any]] = {}

    def start_build(self, source: str, tag: str) -> dict[str, str]:
        self._call("start_build", source, tag)
        build_id = f"sagebuild-images:{len(self.builds) + 1:04d}"
        self.builds[build_id] = {"status": "InProgress", "source": source, "tag": tag}
        return {"id": build_id, "image_uri": f"{self.repository}:{tag}"}

    def describe_build(self, build_id: str) -> dict[str, Any]:
        self._call("describe_build", build_id)
        if build_id not in self.builds:
            raise NotFound(f"no image build {build_id!r}")
        return {k: v for k, v in self.builds[build_id].items() if k in ("status", "reason", "phase")}

    def stop_build(self, build_id: str) -> None:
        self._call("stop_build", build_id)
        build = self.builds.get(build_id)
        if build is None:
            raise NotFound(f"no image build {build_id!r}")
        if build["status"] == "InProgress":
            build.update(status="Failed", reason="the image build ended STOPPED")

    def set_status(self, build_id: str, status: str, reason: str | None = None) -> None:
        self.builds[build_id].update(status=status, **({"reason": reason} if reason else {}))


class FakeNotifier(Recorder):
    """Keeps what was published: ``published`` holds ``(event, payload)``."""

    def __init__(self) -> None:
        super().__init__()
        self.published: list[tuple[str, dict[str, Any]]] = []

    def publish(self, event: str, payload: dict[str, Any]) -> None:
        self._call("publish", event, payload)
        self.published.append((event, payload))

    def events(self) -> list[str]:
        return [event for event, _ in self.published]


@dataclass
class Fakes:
    """One process's fake world: the fakes (typed as themselves, for steering) and their Ports."""

    config: FakeConfigStore
    ledger: SqliteLedger
    artifacts: FakeArtifactStore = field(default_factory=FakeArtifactStore)
    training: FakeTraining = field(default_factory=FakeTraining)
    hosting: FakeHosting = field(default_factory=FakeHosting)
    notifier: FakeNotifier = field(default_factory=FakeNotifier)
    source: FakeSourceStore = field(default_factory=FakeSourceStore)
    images: FakeImageBuilder | None = field(default_factory=FakeImageBuilder)

    @classmethod
    def create(cls, tmp_path: Path, config: dict[str, Any] | None = None, images: bool = True) -> "Fakes":
        """Fakes over a fresh SQLite ledger in ``tmp_path`` and a config (default: pipeline ``wine``)."""
        return cls(config=FakeConfigStore(config or {"pipeline": "wine"}),
                   ledger=SqliteLedger(str(tmp_path / "ledger.db")),
                   images=FakeImageBuilder() if images else None)

    @property
    def ports(self) -> Ports:
        return Ports(config=self.config, ledger=self.ledger, artifacts=self.artifacts, training=self.training,
                     hosting=self.hosting, notifier=self.notifier, source=self.source, images=self.images)

    def running_build(self, reason: str = "test", source: str = "cli",
                      hyperparameters: dict[str, Any] | None = None) -> Build:
        """A build as the build service hands it to the state machine: RUNNING, not initialized."""
        build = self.ledger.create_build(self.config.config["pipeline"], source, reason, hyperparameters,
                                         status=BuildStatus.RUNNING)
        return build

    def initialized_build(self, hyperparameters: dict[str, Any] | None = None, **fields: Any) -> Build:
        """A RUNNING build past Initialize: version ``v<number>`` and the config snapshot set."""
        build = self.running_build(hyperparameters=hyperparameters)
        config = copy.deepcopy(self.config.config)
        config["training"]["hyperparameters"].update(hyperparameters or {})
        self.ledger.update_build(build.id, version=f"v{build.number}", config=config,
                                 endpoint_name=config["deploy"]["endpoint"], **fields)
        return self.ledger.get_build(build.id)


if TYPE_CHECKING:  # pragma: no cover - read by mypy only
    from lambda_pipeline.ports import (ArtifactStore, ConfigStore, HostingPlatform, ImageBuilder, Ledger, Notifier,
                                       SourceStore, TrainingPlatform)

    def _conforms(a: FakeConfigStore, b: FakeArtifactStore, c: FakeSourceStore, d: FakeTraining, e: FakeHosting,
                  f: FakeImageBuilder, g: FakeNotifier, h: SqliteLedger
                  ) -> tuple[ConfigStore, ArtifactStore, SourceStore, TrainingPlatform, HostingPlatform, ImageBuilder,
                             Notifier, Ledger]:
        return a, b, c, d, e, f, g, h
