"""Waiting in the main thread until SIGINT or SIGTERM, reliably.

A process-directed signal may be delivered to any thread; Python runs the handler only when the
main thread next executes bytecode, and a bare ``Event.wait()`` can sleep through it for ever.
So the main thread wakes twice a second.
"""
from __future__ import annotations

import signal
import threading

__all__ = ["stop_on_signals", "wait"]


def stop_on_signals() -> threading.Event:
    """An event set by SIGINT or SIGTERM. Call from the main thread; wait with :func:`wait`."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop


def wait(stop: threading.Event) -> None:
    """Block until ``stop`` is set, waking often enough for signal handlers to run."""
    while not stop.wait(0.5):
        pass
