"""Who the skill answers: its skill id, the users who may act, and the pipeline's name."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from lambda_pipeline.config import LOCAL_SKILL_ID, LOCAL_USER_ID

__all__ = ["SkillSettings"]


@dataclass(frozen=True)
class SkillSettings:
    """Security and naming settings of the skill.

    Args:
        skill_id: every request's application id must equal this (checked on Lambda too).
        allowed_user_ids: Alexa user ids allowed to start and stop builds (of the one pipeline the
            skill serves when given a Builds port; with a directory, each pipeline's own apply).
        others_can_query: whether other users may still ask about builds (likewise).
        pipeline: the pipeline's name (with a directory: the home pipeline notifications follow).
    """

    skill_id: str = LOCAL_SKILL_ID
    allowed_user_ids: frozenset[str] = field(default_factory=lambda: frozenset({LOCAL_USER_ID}))
    others_can_query: bool = True
    pipeline: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "SkillSettings":
        """From a validated pipeline config (its ``skill`` section)."""
        skill = config["skill"]
        return cls(skill_id=skill["skill_id"], allowed_user_ids=frozenset(skill["allowed_user_ids"]),
                   others_can_query=skill["others_can_query"], pipeline=config["pipeline"])

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "SkillSettings":
        """From Lambda environment variables: SKILL_ID, ALLOWED_USER_IDS (comma-separated), ..."""
        env = dict(os.environ if env is None else env)
        users = frozenset(u.strip() for u in env.get("ALLOWED_USER_IDS", "").split(",") if u.strip())
        return cls(skill_id=env.get("SKILL_ID", ""), allowed_user_ids=users,
                   others_can_query=env.get("OTHERS_CAN_QUERY", "true").lower() == "true",
                   pipeline=env.get("PIPELINE_NAME", ""))

    def may_act(self, user_id: str | None) -> bool:
        return bool(user_id) and user_id in self.allowed_user_ids

    def may_query(self, user_id: str | None) -> bool:
        return self.others_can_query or self.may_act(user_id)
