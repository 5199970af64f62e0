"""Domain errors. Each class name is an ``errorType`` the state machine can match.

A step handler raises one of these; Lambda (and the local seam) reports the class name as the
error, so ``ErrorEquals`` in the ASL template names these classes. ``tests/unit/test_definition.py``
checks that every name used in the template exists here.
"""
from __future__ import annotations

__all__ = [
    "SageBuildError", "ConfigError", "NotFound", "BuildNotFound", "AlreadyRunning",
    "NothingToStop", "EngineNotRunning", "BuildEnded", "TransientError", "ImageBuildFailed", "TrainingFailed",
    "TrainingStopped", "GateFailed", "DeployFailed", "InvocationError", "SmokeTestFailed",
    "NothingToRollBack", "UnknownPipeline",
]


class SageBuildError(Exception):
    """Base of every error SageBuild raises on purpose."""

    exit_code = 1


class ConfigError(SageBuildError):
    """The pipeline configuration is missing, malformed, or has a wrong key or type."""

    exit_code = 2


class NotFound(SageBuildError):
    """A named thing (build, endpoint, job) does not exist."""

    exit_code = 2


class BuildNotFound(NotFound):
    """No build has that id or number."""


class UnknownPipeline(NotFound):
    """No registered pipeline has that name (locally: no running engine; on AWS: no stack)."""


class AlreadyRunning(SageBuildError):
    """A build is running and the pipeline is configured to refuse another."""


class NothingToStop(SageBuildError):
    """The build asked to stop has already ended."""


class NotRetryable(SageBuildError):
    """The build cannot run again from where it stopped (it succeeded, runs, or its model was judged)."""


class EngineNotRunning(SageBuildError):
    """The local engine is not running, so the command cannot reach it."""


class ExecutionAlreadyExists(SageBuildError):
    """An execution of that name exists already: a retried launch of a build that runs."""


class Unauthorized(SageBuildError):
    """The engine's API refused the request: its token is missing or wrong."""


class BuildEnded(SageBuildError):
    """The build was stopped or ended while a step was about to start more work."""


class TransientError(SageBuildError):
    """A temporary failure the state machine retries with back-off."""


class ImageBuildFailed(SageBuildError):
    """The image build ended FAILED, FAULT, TIMED_OUT or STOPPED; the message says which phase and why."""


class TrainingFailed(SageBuildError):
    """The training job ended Failed; the message is its failure reason."""


class TrainingStopped(SageBuildError):
    """The training job was stopped (by a user or by its max runtime)."""


class GateFailed(SageBuildError):
    """The model's metric did not pass the validation gate."""


class DeployFailed(SageBuildError):
    """The endpoint did not start serving the new model; the live model is unchanged."""


class SmokeTestFailed(SageBuildError):
    """The endpoint serves the new model, but the smoke invocation with the sample payload failed."""


class NothingToRollBack(SageBuildError):
    """There is no earlier good version to go back to (or it is the live one already)."""


class InvocationError(SageBuildError):
    """An endpoint answered an invocation with an error."""
