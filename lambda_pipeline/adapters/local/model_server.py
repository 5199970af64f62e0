"""A model server honouring the SageMaker serving contract; one per model version.

Run as ``python -m lambda_pipeline.adapters.local.model_server --model-dir D [--code-dir C
--program P] [--port N] [--workers W]``. It loads the model once, then forks W worker processes
(default ``SAGEMAKER_MODEL_SERVER_WORKERS``, else the CPU count, as SageMaker's scikit-learn
container does) that accept on one listening socket (see ``prefork.py``). ``GET /ping`` answers
200 only while every worker is serving. User code may define ``model_fn``, ``input_fn``,
``predict_fn``, ``output_fn``; missing ones fall back to the defaults of the framework in
``SAGEBUILD_FRAMEWORK``: the scikit-learn container's here (joblib model; CSV, JSON or NPY in;
JSON or CSV out), the others in ``serving_defaults.py``. Once every worker is up, the first line
on stdout is ``{"port": N, "pids": [master, worker, ...]}``.
"""
from __future__ import annotations

import argparse
import importlib.util
import io
import json
import logging
import os
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler
from types import ModuleType
from typing import Any, Callable, Mapping

from lambda_pipeline.adapters.local.httpserver import LocalHTTPServer, OneWriteHandler
from lambda_pipeline.adapters.local.prefork import ReadyBoard, cpu_count, run_prefork
from lambda_pipeline.adapters.local.serving_defaults import UnsupportedMediaType, defaults_for

__all__ = ["default_model_fn", "default_input_fn", "default_predict_fn", "default_output_fn",
           "ModelHandlers", "serve", "resolve_workers", "WORKERS_ENV", "MAX_WORKERS"]

WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
MAX_WORKERS = 64

logger = logging.getLogger("sagebuild.model_server")


def default_model_fn(model_dir: str) -> Any:
    import joblib
    candidates = [f for f in sorted(os.listdir(model_dir)) if f.endswith((".joblib", ".pkl"))]
    if not candidates:
        raise FileNotFoundError(f"no .joblib or .pkl model in {model_dir}; define model_fn to load it")
    return joblib.load(os.path.join(model_dir, candidates[0]))


def default_input_fn(body: bytes, content_type: str) -> Any:
    import numpy as np
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "text/csv":
        rows = [line for line in body.decode("utf-8").splitlines() if line.strip()]
        return np.array([[float(x) for x in line.split(",")] for line in rows])
    if ctype == "application/json":
        data = json.loads(body.decode("utf-8"))
        if isinstance(data, dict) and "instances" in data:
            data = data["instances"]
        array = np.array(data, dtype=float)
        return array.reshape(1, -1) if array.ndim == 1 else array
    if ctype == "application/x-npy":
        return np.load(io.BytesIO(body), allow_pickle=False)
    raise UnsupportedMediaType(f"content type {content_type!r} is not supported: use text/csv, "
                               "application/json or application/x-npy")


def default_predict_fn(data: Any, model: Any) -> Any:
    return model.predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    accept = (accept or "application/json").split(",")[0].split(";")[0].strip().lower()
    values = prediction.tolist() if hasattr(prediction, "tolist") else prediction
    if accept in ("application/json", "*/*", ""):
        return json.dumps(values).encode(), "application/json"
    if accept == "text/csv":
        rows = values if values and isinstance(values[0], list) else [[v] for v in values]
        return ("\n".join(",".join(str(x) for x in row) for row in rows) + "\n").encode(), "text/csv"
    raise UnsupportedMediaType(f"accept type {accept!r} is not supported: use application/json or text/csv")


class ModelHandlers:
    """The four serving functions, taken from user code where it defines them."""

    def __init__(self, module: ModuleType | None = None,
                 defaults: dict[str, Callable[..., Any]] | None = None) -> None:
        def pick(name: str, default: Callable[..., Any]) -> Callable[..., Any]:
            default = (defaults or {}).get(name, default)
            return getattr(module, name, default) if module is not None else default
        self.model_fn = pick("model_fn", default_model_fn)
        self.input_fn = pick("input_fn", default_input_fn)
        self.predict_fn = pick("predict_fn", default_predict_fn)
        self.output_fn = pick("output_fn", default_output_fn)

    def invoke(self, model: Any, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        data = self.input_fn(body, content_type)
        prediction = self.predict_fn(data, model)
        result = self.output_fn(prediction, accept)
        if isinstance(result, tuple):
            payload, ctype = result[0], result[1]
        else:
            payload, ctype = result, accept or "application/json"
        if isinstance(payload, str):
            payload = payload.encode()
        return payload, ctype


def load_user_module(code_dir: str, program: str) -> ModuleType:
    sys.path.insert(0, code_dir)
    path = os.path.join(code_dir, program)
    spec = importlib.util.spec_from_file_location(os.path.splitext(program)[0], path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load inference script {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def resolve_workers(workers: int | None, env: Mapping[str, str]) -> int:
    """``workers`` if given, else ``SAGEMAKER_MODEL_SERVER_WORKERS``, else the CPU count (1-64).

    Raises:
        ValueError: the count is not an integer from 1 to 64, naming where it came from.
    """
    source, raw = ("--workers", str(workers)) if workers is not None else (WORKERS_ENV, env.get(WORKERS_ENV, ""))
    if workers is None and not raw.strip():
        return min(cpu_count(), MAX_WORKERS)
    try:
        count = int(raw)
    except ValueError:
        raise ValueError(f"{source} must be an integer from 1 to {MAX_WORKERS}, got {raw!r}") from None
    if not 1 <= count <= MAX_WORKERS:
        raise ValueError(f"{source} must be an integer from 1 to {MAX_WORKERS}, got {count}")
    return count


def _make_handler(model: Any, handlers: ModelHandlers, board: ReadyBoard) -> type[BaseHTTPRequestHandler]:
    class Handler(OneWriteHandler):
        def log_message(self, fmt: str, *args: Any) -> None:  # quiet access log
            pass

        def _send(self, status: int, body: bytes, ctype: str = "application/json") -> None:
            self.send_whole(status, body, [("Content-Type", ctype)])

        def do_GET(self) -> None:
            if self.path == "/ping":
                ready = board.ready_count()
                if ready == board.slots:
                    self._send(200, b"{}")
                else:
                    self._send(503, json.dumps({"error": f"{ready} of {board.slots} workers are serving"}).encode())
            else:
                self._send(404, b'{"error": "not found: use GET /ping or POST /invocations"}')

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            if self.path != "/invocations":
                self._send(404, b'{"error": "not found: use POST /invocations"}')
                return
            try:
                payload, ctype = handlers.invoke(model, body, self.headers.get("Content-Type", ""),
                                                 self.headers.get("Accept", "application/json"))
            except UnsupportedMediaType as exc:
                status = 406 if "accept" in str(exc) else 415
                self._send(status, json.dumps({"error": str(exc)}).encode())
                return
            except Exception as exc:  # user code failed: report it, keep serving
                logger.exception("invocation failed")
                self._send(400 if isinstance(exc, (ValueError, TypeError)) else 500,
                           json.dumps({"error": f"{type(exc).__name__}: {exc}"}).encode())
                return
            self._send(200, payload, ctype)

    return Handler


def listen(port: int) -> socket.socket:
    """The one listening socket every worker accepts on (non-blocking: workers race for each connection)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(LocalHTTPServer.request_queue_size)
    sock.setblocking(False)
    return sock


def serve(model_dir: str, code_dir: str | None, program: str | None, port: int = 0,
          ready: Callable[[int, list[int]], None] | None = None, workers: int | None = None) -> int:
    """Load the model, fork the workers, supervise them until terminated; the master's exit code.

    ``ready(port, pids)`` runs once every worker serves (pids: the master's, then the workers').
    """
    count = resolve_workers(workers, os.environ)
    module = load_user_module(code_dir, program) if code_dir and program else None
    handlers = ModelHandlers(module, defaults_for(os.environ.get("SAGEBUILD_FRAMEWORK")))
    model = handlers.model_fn(model_dir)
    listener = listen(port)

    def all_ready(pids: list[int]) -> None:
        if ready is not None:
            ready(listener.getsockname()[1], [os.getpid(), *pids])

    return run_prefork(listener, count, lambda index, board: serve_worker(listener, model, handlers, index, board),
                       all_ready)


def serve_worker(listener: socket.socket, model: Any, handlers: ModelHandlers, index: int, board: ReadyBoard) -> None:
    """One worker (in a forked process): accept on ``listener``, mark slot ``index`` ready, serve forever."""
    bound = listener.getsockname()
    server = LocalHTTPServer(bound, _make_handler(model, handlers, board), bind_and_activate=False)
    server.socket.close()
    server.socket = listener
    server.server_address = bound
    board.mark(index, True)
    server.serve_forever(poll_interval=0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--code-dir")
    parser.add_argument("--program")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None,
                        help=f"worker processes (default: ${WORKERS_ENV}, else the CPU count)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)

    def announce(port: int, pids: list[int]) -> None:
        print(json.dumps({"port": port, "pids": pids}), flush=True)

    import signal
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))  # until the workers exist
    try:
        return serve(args.model_dir, args.code_dir, args.program or os.environ.get("SAGEMAKER_PROGRAM"),
                     args.port, ready=announce, workers=args.workers)
    except Exception as exc:
        print(f"model server failed to start: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        return 1


if __name__ == "__main__":
    threading.current_thread().name = "model-server"
    sys.exit(main())
