"""Step handlers: one per Task state of the build state machine.

Each step is ``step(ports, event)``: it does one short thing and returns JSON-safe output. The
long steps (image build, training, deploy, rollback) are waiting states: they start the work (or
find it started) and keep their task token with the job (:mod:`.waits`); the job's end answers
it with the status check of :data:`CHECKS` (:func:`answer_wait`). :func:`bind_handlers` turns them into Lambda-shaped
``handler(event, context)`` callables over one process's ports (the local engine binds them at
start, ``lambda_entry`` at cold start). Errors are the classes of :mod:`lambda_pipeline.errors`;
their names are what the state machine's Catch and Retry match.
"""
from .handlers import CHECKS, STEPS, answer_wait, bind_handlers, sweep_waits

__all__ = ["STEPS", "CHECKS", "bind_handlers", "answer_wait", "sweep_waits"]
