"""Training and serving image URIs, per region and framework version, from the SageMaker Python
SDK's maintained catalogue (``sagemaker.core.image_uris``), not from a table of our own.

Upgrading the pinned ``sagemaker-core`` brings new regions and versions; nothing here changes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambda_pipeline.errors import ConfigError

__all__ = ["SCRIPT_MODE", "ImageChoice", "resolve_images", "latest_version"]

# Script-mode frameworks (the user's train.py in AWS's framework container).
SCRIPT_MODE = ("sklearn", "pytorch", "tensorflow", "xgboost", "mxnet")


@dataclass(frozen=True)
class ImageChoice:
    """What a stack trains and serves with."""

    framework: str
    version: str
    training: str
    serving: str


def _catalogue() -> Any:
    try:
        from sagemaker.core import image_uris
    except ImportError as exc:  # pragma: no cover - a dependency of sagebuild
        raise ConfigError("the SageMaker SDK's image catalogue (sagemaker-core) is not installed") from exc
    return image_uris


def _scope_config(framework: str, scope: str) -> dict[str, Any]:
    config = _catalogue().config_for_framework(framework)
    return config.get(scope, config) if "versions" not in config else config


def _versions(framework: str, scope: str) -> list[str]:
    try:
        return list(_scope_config(framework, scope)["versions"])
    except (ValueError, FileNotFoundError, KeyError) as exc:
        raise ConfigError(f"the SageMaker image catalogue knows no framework {framework!r}") from exc


def latest_version(framework: str, serving_too: bool = False) -> str:
    """The newest version the catalogue lists for training (and, with ``serving_too``, for
    inference as well: training images are often published before serving ones)."""
    training = _versions(framework, "training")
    if not serving_too:
        return training[-1]
    serving = set(_versions(framework, "inference"))
    both = [v for v in training if v in serving]
    if not both:
        raise ConfigError(f"the SageMaker image catalogue has no {framework} version with both images")
    return both[-1]


def _py_version(framework: str, version: str, scope: str) -> str | None:
    config = _scope_config(framework, scope)
    version = (config.get("version_aliases") or {}).get(version, version)
    entry = config.get("versions", {}).get(version, {})
    py_versions = entry.get("py_versions")
    return py_versions[-1] if py_versions else None


def _retrieve(framework: str, region: str, version: str, scope: str, instance_type: str) -> str:
    catalogue = _catalogue()
    try:
        return catalogue.retrieve(framework=framework, region=region, version=version,
                                  py_version=_py_version(framework, version, scope), instance_type=instance_type,
                                  image_scope=scope)
    except (ValueError, KeyError) as exc:
        raise ConfigError(f"no {scope} image for {framework} {version} in {region}: {exc}") from exc


def resolve_images(framework: str, region: str, version: str | None = None, algorithm: str | None = None,
                   training_instance: str = "ml.m5.large", hosting_instance: str = "ml.t2.medium") -> ImageChoice:
    """The images of a stack.

    Args:
        framework: one of :data:`SCRIPT_MODE`, ``builtin`` (a SageMaker algorithm, named by
            ``algorithm``), or ``byo`` (your own image, built per build by CodeBuild: none here).
        version: the framework (or algorithm) version; default the newest the catalogue lists.

    Raises:
        ConfigError: an unknown framework, version or region, with the catalogue's own message.
    """
    if framework == "byo":
        return ImageChoice("byo", "", "", "")
    if framework == "builtin":
        if not algorithm:
            raise ConfigError("framework 'builtin' needs an algorithm, e.g. --param Algorithm=linear-learner")
        version = version or latest_version(algorithm)
        image = _retrieve(algorithm, region, version, "training", training_instance)
        return ImageChoice(algorithm, version, image, image)
    if framework not in SCRIPT_MODE:
        raise ConfigError(f"unknown framework {framework!r}: use one of {', '.join(SCRIPT_MODE)}, builtin or byo")
    version = version or latest_version(framework, serving_too=True)
    return ImageChoice(framework, version, _retrieve(framework, region, version, "training", training_instance),
                       _retrieve(framework, region, version, "inference", hosting_instance))
