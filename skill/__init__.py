"""The Alexa skill: start, stop and follow builds by voice (en-US, fr-FR, ja-JP)."""
from .app import SkillApp, lambda_handler
from .settings import SkillSettings

__all__ = ["SkillApp", "SkillSettings", "lambda_handler"]
