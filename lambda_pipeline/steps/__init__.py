"""Step handlers: one per Task state of the build state machine.

Each step is ``step(ports, event)``: it does one short thing (start work, or check on it) and
returns JSON-safe output. :func:`bind_handlers` turns them into Lambda-shaped
``handler(event, context)`` callables over one process's ports (the local engine binds them at
start, ``lambda_entry`` at cold start). Errors are the classes of :mod:`lambda_pipeline.errors`;
their names are what the state machine's Catch and Retry match.
"""
from .handlers import STEPS, bind_handlers

__all__ = ["STEPS", "bind_handlers"]
