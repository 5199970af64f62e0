"""The SageBuild pipeline: the ASL definition, its step handlers, and the ports they use."""
from .config import load_config_text, validate_config
from .definition import render_definition
from .errors import SageBuildError
from .model import Build, BuildStatus, EndpointInfo, LogChunk, StepRecord

__all__ = ["render_definition", "load_config_text", "validate_config", "SageBuildError", "Build",
           "BuildStatus", "EndpointInfo", "LogChunk", "StepRecord"]
