"""The HTTP server every local SageBuild service uses (API, endpoints, model servers, skill).

``http.server`` listens with a backlog of 5: a burst of clients (a trigger flood, a load test)
gets connections reset. This one queues 1,024 and never blocks shutdown on handler threads.

Small responses written as several sends (status line and headers, then the body) without
``TCP_NODELAY`` meet the client's delayed ACK: about 40 ms lost per keep-alive request. So
every accepted socket gets ``TCP_NODELAY`` and :class:`OneWriteHandler` sends a response's
headers and body in one write.
"""
from __future__ import annotations

import socket
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["LocalHTTPServer", "OneWriteHandler"]


class LocalHTTPServer(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


class OneWriteHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive handler whose :meth:`send_whole` writes a response in one ``sendall``."""

    protocol_version = "HTTP/1.1"
    wbufsize = 0  # unbuffered: one write() is one sendall()

    def send_whole(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        """Status line, ``headers``, ``Content-Length`` and ``body`` as one write."""
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        buffered: list[bytes] = getattr(self, "_headers_buffer", [])
        self._headers_buffer: list[bytes] = []
        self.wfile.write(b"".join(buffered) + b"\r\n" + body)
