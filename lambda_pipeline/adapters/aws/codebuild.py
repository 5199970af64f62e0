"""ImageBuilder on CodeBuild: docker build + push to the stack's ECR repository."""
from __future__ import annotations

from typing import Any

from ...errors import NotFound
from .boto import client as _client, translate

__all__ = ["CodeBuildImageBuilder", "BUILDSPEC"]

# The source zip holds the user's Dockerfile at its root; the image is tagged per build version.
BUILDSPEC = """version: 0.2
phases:
  pre_build:
    commands:
      - aws ecr get-login-password --region $AWS_DEFAULT_REGION | docker login --username AWS --password-stdin ${IMAGE_REPO_URI%%/*}
  build:
    commands:
      - docker build -t $IMAGE_REPO_URI:$IMAGE_TAG .
  post_build:
    commands:
      - test "$CODEBUILD_BUILD_SUCCEEDING" = 1 && docker push $IMAGE_REPO_URI:$IMAGE_TAG
"""

_RUNNING = {"IN_PROGRESS"}
_FAILED = {"FAILED", "FAULT", "TIMED_OUT", "STOPPED"}


class CodeBuildImageBuilder:
    """Starts and follows image builds of one CodeBuild project.

    Args:
        project: the CodeBuild project name (the stack's ImageBuildProject).
        repository_uri: the ECR repository images are pushed to.
    """

    def __init__(self, project: str, repository_uri: str, boto3_client: Any = None, boto3_session: Any = None) -> None:
        self._cb = _client("codebuild", boto3_client, boto3_session)
        self.project, self.repository_uri = project, repository_uri

    def start_build(self, source: str, tag: str) -> dict[str, str]:
        """Start a build of ``source`` (``bucket/key.zip``); returns its id and the image URI it pushes."""
        try:
            answer = self._cb.start_build(
                projectName=self.project, sourceTypeOverride="S3", sourceLocationOverride=source,
                buildspecOverride=BUILDSPEC,
                environmentVariablesOverride=[{"name": "IMAGE_TAG", "value": tag, "type": "PLAINTEXT"},
                                              {"name": "IMAGE_REPO_URI", "value": self.repository_uri,
                                               "type": "PLAINTEXT"}])
        except Exception as exc:
            raise translate(exc, f"could not start the image build of {source}") from exc
        return {"id": answer["build"]["id"], "image_uri": f"{self.repository_uri}:{tag}"}

    def describe_build(self, build_id: str) -> dict[str, Any]:
        """``{"status": InProgress | Succeeded | Failed, "reason": ...}``; the reason names the phase."""
        try:
            builds = self._cb.batch_get_builds(ids=[build_id])["builds"]
        except Exception as exc:
            raise translate(exc, f"could not describe image build {build_id}") from exc
        if not builds:
            raise NotFound(f"no image build {build_id!r}")
        status = builds[0]["buildStatus"]
        if status in _RUNNING:
            return {"status": "InProgress", "phase": builds[0].get("currentPhase")}
        if status in _FAILED:
            return {"status": "Failed", "reason": _failure_reason(builds[0])}
        return {"status": "Succeeded"}

    def stop_build(self, build_id: str) -> None:
        try:
            self._cb.stop_build(id=build_id)
        except Exception as exc:
            raise translate(exc, f"could not stop image build {build_id}") from exc


def _failure_reason(build: dict[str, Any]) -> str:
    """The first failing phase and CodeBuild's message for it, e.g. "BUILD: COMMAND_EXECUTION_ERROR: ..."."""
    for phase in build.get("phases", []):
        if phase.get("phaseStatus") in _FAILED:
            context: dict[str, Any] = next((c for c in phase.get("contexts", []) if c.get("message")), {})
            detail = f": {context.get('statusCode')}: {context.get('message')}" if context else ""
            return f"the image build failed in its {phase['phaseType']} phase{detail}"
    return f"the image build ended {build['buildStatus']}"
