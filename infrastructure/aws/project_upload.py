"""A local project, moved onto its stack: the config (adapted to AWS) into SSM, the training
code (and Dockerfile source, and notebooks) into the artifacts bucket, optionally the data.

The stack's IAM policies and EventBridge rules name resources after the stack, so the config
the stack runs must too: ``pipeline`` is the stack name, the endpoint ``<stack>-endpoint``.
"""
from __future__ import annotations

import copy
import json
import tempfile
import zipfile
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any, Callable

from lambda_pipeline.adapters.local.tarballs import pack_dir, walk_files
from lambda_pipeline.config import validate_config

from .render import STACK_POLLING

__all__ = ["aws_config", "ProjectUploader"]


def aws_config(local: dict[str, Any], stack: str, data_bucket: str, params: dict[str, str]) -> dict[str, Any]:
    """The project's validated config as the stack runs it (pure).

    Kept: code layout, hyperparameters, metrics, gate, deploy entry point and sample, builds.
    Changed: names (stack-derived), channels (``s3://<data bucket>/data/<channel>``), a ``local``
    instance type (the stack's TrainingInstanceType), polling (the stack's back-off), the skill's
    id and users (the stack's parameters).
    """
    config = copy.deepcopy(local)
    config["pipeline"] = stack
    config["deploy"]["endpoint"] = f"{stack}-endpoint"
    config["training"]["channels"] = {name: f"s3://{data_bucket}/data/{name}" for name in config["training"]["channels"]}
    if config["training"]["instance_type"] == "local":
        config["training"]["instance_type"] = params.get("TrainingInstanceType") or "ml.m5.large"
    config["polling"] = dict(STACK_POLLING)
    users = [u.strip() for u in params.get("AllowedAlexaUserIds", "").split(",") if u.strip()]
    config["skill"] = {**config.get("skill", {}), "skill_id": params.get("AlexaSkillId", ""), "allowed_user_ids": users}
    return validate_config(config, f"the config for stack {stack}")


def _zip(source: Path, out: Path) -> None:
    """CodeBuild's S3 source is a zip; it holds what the tarball holds."""
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for full, relative in walk_files(str(source)):
            archive.write(full, relative)


class ProjectUploader:
    """Puts a project where its stack's builds look, saying what went where."""

    def __init__(self, session: Any, say: Callable[[str], None]) -> None:
        self._session = session
        self._say = say
        self.s3 = session.client("s3")

    def upload(self, project: Path, stack: str, outputs: dict[str, str], params: dict[str, str],
               write_config: bool = True, upload_data: bool = False) -> list[str]:
        """Returns the ``s3://`` URIs written. Without a ``sagebuild.json`` in ``project``: nothing."""
        from lambda_pipeline.adapters.local.config_store import CONFIG_FILE, FileConfigStore
        if not (project / CONFIG_FILE).exists():
            self._say(f"no {CONFIG_FILE} in {project}: no config or code uploaded (run deploy in a project folder)")
            return []
        local = FileConfigStore(str(project)).load()
        ssm = self._session.client("ssm")
        parameter = outputs["ConfigParameterName"]
        if write_config:
            config = aws_config(local, stack, outputs["DataBucket"], params)
            ssm.put_parameter(Name=parameter, Value=json.dumps(config, indent=2), Type="String", Overwrite=True)
            channels = ", ".join(f"{k} -> {v}" for k, v in config["training"]["channels"].items())
            self._say(f"config: {CONFIG_FILE} -> SSM {parameter} (pipeline {stack}, endpoint {stack}-endpoint, "
                      f"training on {config['training']['instance_type']}; {channels})")
        else:
            config = json.loads(ssm.get_parameter(Name=parameter)["Parameter"]["Value"])
            self._say(f"config: kept SSM {parameter} as it is (--keep-config)")
        uploaded = self._code(project / local["training"]["source_dir"], config, outputs)
        if "NotebookUrl" in outputs:
            notebooks = files("examples") / "notebooks"
            for notebook in sorted((n for n in notebooks.iterdir() if n.name.endswith(".ipynb")), key=lambda n: n.name):
                with as_file(notebook) as path:
                    uploaded.append(self._put(path, outputs["ArtifactsBucket"], f"notebooks/{notebook.name}"))
        if upload_data:
            uploaded += self._data(project, local, outputs["DataBucket"])
        return uploaded

    def _put(self, path: Path, bucket: str, key: str) -> str:
        self.s3.upload_file(str(path), bucket, key)
        self._say(f"uploaded s3://{bucket}/{key}")
        return f"s3://{bucket}/{key}"

    def _code(self, source: Path, config: dict[str, Any], outputs: dict[str, str]) -> list[str]:
        prefix = f"code/{config['training']['source_dir'].strip('/') or 'root'}"
        bucket = outputs["ArtifactsBucket"]
        uploaded = []
        with tempfile.TemporaryDirectory() as tmp:
            pack_dir(str(source.resolve()), str(Path(tmp) / "sourcedir.tar.gz"))
            uploaded.append(self._put(Path(tmp) / "sourcedir.tar.gz", bucket, f"{prefix}/sourcedir.tar.gz"))
            if (source / "Dockerfile").exists():
                _zip(source.resolve(), Path(tmp) / "image-source.zip")
                uploaded.append(self._put(Path(tmp) / "image-source.zip", bucket, f"{prefix}/image-source.zip"))
        return uploaded

    def _data(self, project: Path, local: dict[str, Any], bucket: str) -> list[str]:
        """Each channel's folder to ``data/<channel>/``; the uploads start a build (S3 -> launch)."""
        uploaded = []
        for name, folder in local["training"]["channels"].items():
            files = sorted(p for p in (project / folder).rglob("*") if p.is_file())
            for path in files:
                key = f"data/{name}/{path.relative_to(project / folder)}"
                self.s3.upload_file(str(path), bucket, key)
                uploaded.append(f"s3://{bucket}/{key}")
            self._say(f"uploaded {len(files)} file(s) of channel {name} to s3://{bucket}/data/{name}/")
        if uploaded:
            self._say("the uploads start a build (S3 -> launch); follow it with SageBuild.from_stack(...).wait()")
        return uploaded
