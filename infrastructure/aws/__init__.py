"""SageBuild on AWS: the CloudFormation template (one jinja2 source) and its variants."""
from .render import VARIANTS, render_template, render_all

__all__ = ["VARIANTS", "render_template", "render_all"]
