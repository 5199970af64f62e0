"""Step handlers: one per Task state of the build state machine.

Each has the Lambda signature ``handler(event, context)``, reads its ports from
:mod:`lambda_pipeline.runtime`, does one short thing (start work, or check on it) and returns
JSON-safe output. Errors are the classes of :mod:`lambda_pipeline.errors`; their names are what
the state machine's Catch and Retry match.
"""
from .handlers import HANDLERS

__all__ = ["HANDLERS"]
