"""The HTTP server every local SageBuild service uses (API, endpoints, model servers, skill).

``http.server`` listens with a backlog of 5: a burst of clients (a trigger flood, a load test)
gets connections reset. This one queues 1,024 and never blocks shutdown on handler threads.
"""
from __future__ import annotations

from http.server import ThreadingHTTPServer

__all__ = ["LocalHTTPServer"]


class LocalHTTPServer(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True
