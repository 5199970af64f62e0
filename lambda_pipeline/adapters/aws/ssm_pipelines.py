"""The ``Pipelines`` port over the SageBuild stacks of one region.

Each stack writes an SSM parameter about itself, ``/sagebuild/pipelines/<stack name>`` (see
``infrastructure/aws/templates/stack.yaml.j2``): its name, who may steer it and the environment its
functions get. The skill on Lambda lists that path (one ``GetParametersByPath`` call, cached for
``ttl`` seconds) and builds each stack's Builds port from its entry, so one skill answers for a dev
and a prod stack, or for every model a team deploys.
"""
from __future__ import annotations

import builtins
import json
import logging
import time
from typing import Any, Callable

from ...errors import ConfigError
from ...model import PipelineInfo
from ...pipelines import unknown
from ...ports import Builds
from .boto import client as _client, translate

__all__ = ["SsmPipelines", "PIPELINES_PATH"]

logger = logging.getLogger(__name__)

PIPELINES_PATH = "/sagebuild/pipelines"


class SsmPipelines:
    """The stacks that registered under ``path``.

    Args:
        path: the SSM path the stacks write under.
        ttl: seconds a listing is reused (0: every call lists afresh).
        builds_factory: environment -> Builds (default: the stack's Step Functions builds).
    """

    def __init__(self, path: str = PIPELINES_PATH, boto3_client: Any = None, boto3_session: Any = None,
                 ttl: float = 10.0, builds_factory: Callable[[dict[str, str]], Builds] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path.rstrip("/")
        self._ssm = _client("ssm", boto3_client, boto3_session)
        self._session = boto3_session
        self._ttl = ttl
        self._clock = clock
        self._factory = builds_factory
        self._listed: tuple[float, dict[str, dict[str, Any]]] | None = None
        self._builds: dict[tuple[str, str], Builds] = {}

    def _entries(self) -> dict[str, dict[str, Any]]:
        now = self._clock()
        if self._listed is not None and now - self._listed[0] < self._ttl:
            return self._listed[1]
        found: dict[str, dict[str, Any]] = {}
        try:
            pages = self._ssm.get_paginator("get_parameters_by_path").paginate(Path=self.path, Recursive=False)
            for page in pages:
                for parameter in page.get("Parameters", []):
                    entry = _parse(parameter)
                    if entry is not None:
                        found[entry["name"]] = entry
        except Exception as exc:
            raise translate(exc, f"listing the pipelines under {self.path}") from exc
        self._listed = (now, found)
        return found

    def _entry(self, name: str) -> dict[str, Any]:
        entries = self._entries()
        if name not in entries:
            self._listed = None  # deployed a moment ago? list once more before saying no
            entries = self._entries()
        try:
            return entries[name]
        except KeyError:
            raise unknown(name, sorted(entries)) from None

    def names(self) -> builtins.list[str]:
        return sorted(self._entries())

    def info(self, name: str) -> PipelineInfo:
        entry = self._entry(name)
        users = entry.get("allowed_user_ids") or ""
        if isinstance(users, str):
            users = [u.strip() for u in users.split(",")]
        return PipelineInfo(name=name, allowed_user_ids=frozenset(u for u in users if u),
                            others_can_query=bool(entry.get("others_can_query", True)),
                            url=entry["environment"]["SAGEBUILD_STATE_MACHINE"])

    def builds(self, name: str) -> Builds:
        entry = self._entry(name)
        env = {k: str(v) for k, v in entry["environment"].items()}
        key = (name, env["SAGEBUILD_STATE_MACHINE"])
        if key not in self._builds:
            if self._factory is not None:
                self._builds[key] = self._factory(env)
            else:
                from ...lambda_entry import builds_from_environment
                self._builds[key] = builds_from_environment(env, self._session)
        return self._builds[key]


def _parse(parameter: dict[str, Any]) -> dict[str, Any] | None:
    """A stack's entry, or None (logged) for a parameter under the path that is not one."""
    try:
        entry = json.loads(parameter["Value"])
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) \
                or not isinstance((entry.get("environment") or {}).get("SAGEBUILD_STATE_MACHINE"), str):
            raise ConfigError("not a SageBuild pipeline entry")
    except (ValueError, KeyError, ConfigError) as exc:
        logger.warning("skipping %s: %s", parameter.get("Name"), exc)
        return None
    return entry
