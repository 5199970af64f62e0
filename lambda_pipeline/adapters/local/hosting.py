"""SageMaker-shaped hosting on 127.0.0.1: models, endpoint configs, endpoints.

An endpoint is a stable front port in the engine that proxies to a model-server subprocess
(``model_server.py``). Updating is blue/green: the new server starts and must answer ``/ping``
before traffic moves; the swap is one pointer change under a lock; the old server drains its
in-flight requests, then stops. If the new server fails, the endpoint keeps serving the old
config and records why (as SageMaker does on a failed UpdateEndpoint).

A model server is a master and ``workers`` processes (``deploy.workers``; see ``prefork.py``);
stopping an endpoint signals its process group, so no worker outlives it. Reads
(``describe_endpoint``, ``list_endpoints``) never wait; code that must wait for a status
calls :meth:`LocalHostingPlatform.wait_endpoint`.
"""
from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable, Iterable, Union

from ...errors import NotFound, SageBuildError, TransientError
from .artifacts import LocalArtifactStore
from .db import Database
from .environments import LocalEnvironments, model_environment_spec
from .httpserver import LocalHTTPServer, OneWriteHandler
from .job_events import JobEvents
from .processes import find_marked_processes, kill_tree, spawn_supervised, terminate_gracefully
from .tarballs import unpack

__all__ = ["LocalHostingPlatform"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS hosting_models (
  name TEXT PRIMARY KEY, artifact TEXT NOT NULL, code TEXT, entry_point TEXT, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hosting_endpoint_configs (
  name TEXT PRIMARY KEY, model_name TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS hosting_endpoints (
  name TEXT PRIMARY KEY, config_name TEXT, status TEXT NOT NULL, port INTEGER,
  failure_reason TEXT, updated_at REAL NOT NULL);
"""
_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_SETTLED = ("InService", "Failed")
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"  # the model server's own name for it (model_server.py)

Workers = Union[int, None, Callable[[], Union[int, None]]]


class _Backend:
    """One model-server process and the requests it is answering."""

    def __init__(self, config_name: str, proc: subprocess.Popen[bytes], port: int, pids: list[int]) -> None:
        self.config_name = config_name
        self.proc = proc
        self.port = port
        self.pids = pids  # the master's, then its workers' (as the server announced them)
        self.inflight = 0
        self.idle = threading.Condition()
        self.retiring = False


class _Endpoint:
    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.backend: _Backend | None = None
        self.server: LocalHTTPServer | None = None
        self.pending: str | None = None
        self.cancelled: set[str] = set()
        self.starting: set[subprocess.Popen[bytes]] = set()  # model servers not yet answering /ping

    def stop_starting(self) -> None:
        """Stop servers still starting for this endpoint (it is being deleted or shut down)."""
        for proc in list(self.starting):
            terminate_gracefully(proc, 2)

    @property
    def port(self) -> int | None:
        return self.server.server_address[1] if self.server else None

    def acquire(self) -> _Backend | None:
        with self.lock:
            backend = self.backend
            if backend is not None:
                with backend.idle:
                    backend.inflight += 1
            return backend


def _release(backend: _Backend) -> None:
    with backend.idle:
        backend.inflight -= 1
        if backend.inflight == 0:
            backend.idle.notify_all()


class LocalHostingPlatform:
    """HostingPlatform port on local processes.

    Args:
        root: where unpacked models and server logs live.
        db_path: SQLite file for the hosting tables.
        artifacts: resolves ``file://`` model and code URIs.
        python: interpreter for model servers (of models trained without an environment).
        environments: builds (or reuses) the environment a model was trained in, to serve it there.
        ready_timeout: seconds a new server has to answer ``/ping``.
        drain_seconds: longest wait for in-flight requests on the old server after a swap.
        workers: worker processes per model server, or a callable read each time one starts
            (``deploy.workers`` of the live config); None leaves it to the model server:
            ``SAGEMAKER_MODEL_SERVER_WORKERS`` if set, else the CPU count.
    """

    def __init__(self, root: str, db_path: str, artifacts: LocalArtifactStore, python: str = sys.executable,
                 ready_timeout: float = 120.0, drain_seconds: float = 30.0,
                 clock: Callable[[], float] = time.time, workers: Workers = None,
                 environments: LocalEnvironments | None = None) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._db = Database(db_path, _SCHEMA)
        self._artifacts = artifacts
        self._python = python
        self._environments = environments
        self._ready_timeout = ready_timeout
        self._workers = workers
        self._drain = drain_seconds
        self._clock = clock
        self._endpoints: dict[str, _Endpoint] = {}
        self.events = JobEvents()  # InService / Failed / deleted: the engine answers the state waiting on it
        self._closing = False

    # -- models and configs ---------------------------------------------------------------
    def create_model(self, name: str, artifact_uri: str, code_uri: str | None, entry_point: str | None,
                     image_uri: str | None = None) -> None:
        """``image_uri`` is accepted for the port's sake: locally the model is served in the environment it
        was trained in (the ``environment.json`` beside its artifact)."""
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO hosting_models VALUES (?, ?, ?, ?, ?)",
                         (name, artifact_uri, code_uri, entry_point, self._clock()))

    def create_endpoint_config(self, name: str, model_name: str) -> None:
        if not self._db.query("SELECT 1 FROM hosting_models WHERE name = ?", (model_name,)):
            raise NotFound(f"no model {model_name!r}")
        with self._db.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO hosting_endpoint_configs VALUES (?, ?, ?)",
                         (name, model_name, self._clock()))

    # -- endpoints ------------------------------------------------------------------------
    def create_endpoint(self, name: str, config_name: str, port: int = 0) -> None:
        """Bind the front port now (503 until ready) and start the model server in the background."""
        if name in self._endpoints:
            raise SageBuildError(f"endpoint {name!r} already exists: update it instead")
        self._config(config_name)
        endpoint = _Endpoint(name)
        endpoint.server = self._bind(endpoint, port)
        self._endpoints[name] = endpoint
        self._save(name, None, "Creating", endpoint.port, None)
        endpoint.pending = config_name
        threading.Thread(target=self._roll_out, args=(endpoint, config_name, True),
                         name=f"create-{name}", daemon=True).start()

    def update_endpoint(self, name: str, config_name: str, traffic: dict[str, Any] | None = None) -> None:
        """Blue/green: start the new server, swap when it answers /ping, drain the old one.
        Locally the swap moves all traffic at once, whatever ``traffic`` says."""
        endpoint = self._endpoint(name)
        self._config(config_name)
        row = self._row(name)
        if row["status"] in ("Creating", "Updating"):
            # busy a moment (restored after a restart, or another update): the state machine retries
            raise TransientError(f"endpoint {name!r} is {row['status']}; wait for it to finish")
        self._save(name, row["config_name"], "Updating", endpoint.port, None)
        endpoint.pending = config_name
        threading.Thread(target=self._roll_out, args=(endpoint, config_name, False),
                         name=f"update-{name}", daemon=True).start()

    def describe_endpoint(self, name: str) -> dict[str, Any] | None:
        """SageMaker ``DescribeEndpoint`` shape (plus ``Url``); None if there is no such endpoint."""
        rows = self._db.query("SELECT * FROM hosting_endpoints WHERE name = ?", (name,))
        if not rows:
            return None
        row = rows[0]
        endpoint = self._endpoints.get(name)
        out = {"EndpointName": name, "EndpointStatus": row["status"], "EndpointConfigName": row["config_name"],
               "LastModifiedTime": row["updated_at"],
               "Url": f"http://127.0.0.1:{endpoint.port}" if endpoint and endpoint.port else None}
        if row["failure_reason"]:
            out["FailureReason"] = row["failure_reason"]
        if endpoint is not None and endpoint.pending:
            out["PendingEndpointConfigName"] = endpoint.pending
        if row["config_name"]:
            out["ModelName"] = self._config(row["config_name"])
        return out

    def wait_endpoint(self, name: str, timeout: float, statuses: Iterable[str] = _SETTLED,
                      interval: float = 0.05, sleep: Callable[[float], None] = time.sleep,
                      clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
        """Describe ``name`` until its status is one of ``statuses`` with no rollout pending.

        Raises:
            NotFound: there is no such endpoint. TimeoutError: still not there after ``timeout`` s.
        """
        wanted = tuple(statuses)
        deadline = clock() + timeout
        while True:
            desc = self.describe_endpoint(name)
            if desc is None:
                raise NotFound(f"no endpoint {name!r}")
            if desc["EndpointStatus"] in wanted and not desc.get("PendingEndpointConfigName"):
                return desc
            if clock() >= deadline:
                raise TimeoutError(f"endpoint {name!r} is still {desc['EndpointStatus']} after {timeout:g} s")
            sleep(interval)

    def server_pids(self, name: str) -> list[int]:
        """PIDs of the live model server of ``name`` (master first, then workers); [] if none."""
        endpoint = self._endpoints.get(name)
        backend = endpoint.backend if endpoint else None
        return list(backend.pids) if backend else []

    def list_endpoints(self) -> list[dict[str, Any]]:
        return [d for d in (self.describe_endpoint(r["name"]) for r in
                            self._db.query("SELECT name FROM hosting_endpoints ORDER BY name")) if d]

    def ping_endpoint(self, name: str) -> bool:
        endpoint = self._endpoints.get(name)
        return bool(endpoint and endpoint.port and _ping(endpoint.port, timeout=2.0))

    def invoke_endpoint(self, name: str, body: bytes, content_type: str, accept: str = "application/json",
                        timeout: float = 30.0) -> tuple[int, bytes]:
        """POST to the endpoint's /invocations through its front port: (status, body)."""
        endpoint = self._endpoint(name)
        try:
            conn = http.client.HTTPConnection("127.0.0.1", endpoint.port or 0, timeout=timeout)
            conn.request("POST", "/invocations", body=body,
                         headers={"Content-Type": content_type, "Accept": accept})
            resp = conn.getresponse()
            result = resp.status, resp.read()
            conn.close()
            return result
        except OSError as exc:
            return 0, f"the endpoint did not answer: {exc}".encode()

    def cancel_update(self, name: str, config_name: str) -> bool:
        """Abandon a pending rollout of ``config_name`` unless traffic has already moved."""
        endpoint = self._endpoints.get(name)
        if endpoint is None or endpoint.pending != config_name:
            return False
        endpoint.cancelled.add(config_name)
        return True

    def delete_endpoint(self, name: str) -> None:
        """Stop serving and forget the endpoint (models and configs stay)."""
        endpoint = self._endpoints.pop(name, None)
        if endpoint is not None:
            if endpoint.server is not None:
                endpoint.server.shutdown()
                endpoint.server.server_close()
            endpoint.stop_starting()
            if endpoint.backend is not None:
                endpoint.backend.retiring = True
                terminate_gracefully(endpoint.backend.proc, 5)
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM hosting_endpoints WHERE name = ?", (name,))
        self.events.emit("endpoint", name)

    # -- lifecycle ------------------------------------------------------------------------
    def restore(self) -> list[str]:
        """After an engine restart, bring every endpoint back on its port with its live config.

        Model servers left by the previous engine (a worker whose master was killed, say) are
        killed first: they carry this platform's ``SAGEBUILD_OWNER`` marker.
        """
        self.kill_leftovers()
        restored = []
        for row in self._db.query("SELECT * FROM hosting_endpoints"):
            if not row["config_name"]:
                self._save(row["name"], None, "Failed", None, "the engine stopped before the endpoint was created")
                continue
            endpoint = _Endpoint(row["name"])
            try:
                endpoint.server = self._bind(endpoint, row["port"] or 0)
            except OSError:
                logger.warning("endpoint port busy, picking another", extra={"endpoint": row["name"]})
                endpoint.server = self._bind(endpoint, 0)
            self._endpoints[row["name"]] = endpoint
            self._save(row["name"], None, "Creating", endpoint.port, None)
            endpoint.pending = row["config_name"]
            threading.Thread(target=self._roll_out, args=(endpoint, row["config_name"], True),
                             daemon=True).start()
            restored.append(row["name"])
        return restored

    def kill_leftovers(self) -> list[int]:
        """Kill every process marked as a model server of this platform's root; their PIDs."""
        mine = {pid for endpoint in self._endpoints.values() if endpoint.backend for pid in endpoint.backend.pids}
        killed = [pid for pid in find_marked_processes(self._owner) if pid not in mine]
        for pid in killed:
            kill_tree(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if killed:
            logger.warning("killed leftover model servers", extra={"pids": killed})
        return killed

    def shutdown(self) -> None:
        self._closing = True
        for endpoint in list(self._endpoints.values()):
            if endpoint.server is not None:
                endpoint.server.shutdown()
                endpoint.server.server_close()
            endpoint.stop_starting()
            if endpoint.backend is not None:
                terminate_gracefully(endpoint.backend.proc, 5)
        self._endpoints.clear()

    # -- internals ------------------------------------------------------------------------
    def _roll_out(self, endpoint: _Endpoint, config_name: str, creating: bool) -> None:
        try:
            backend = self._start_backend(endpoint, config_name)
        except SageBuildError as exc:
            endpoint.pending = None
            if self._closing or self._endpoints.get(endpoint.name) is not endpoint:
                return  # deleted meanwhile: nothing to record
            if creating:
                self._save(endpoint.name, None, "Failed", endpoint.port, str(exc))
            else:
                live = endpoint.backend.config_name if endpoint.backend else None
                self._save(endpoint.name, live, "InService", endpoint.port,
                           f"update to {config_name} failed and was rolled back: {exc}")
            return
        if self._closing or self._endpoints.get(endpoint.name) is not endpoint:
            # deleted or shut down while this server started: it must not outlive its endpoint
            backend.retiring = True
            terminate_gracefully(backend.proc, 5)
            return
        if config_name in endpoint.cancelled:
            endpoint.cancelled.discard(config_name)
            endpoint.pending = None
            backend.retiring = True
            terminate_gracefully(backend.proc, 5)
            live = endpoint.backend.config_name if endpoint.backend else None
            self._save(endpoint.name, live, "InService" if live else "Failed", endpoint.port,
                       f"update to {config_name} was cancelled")
            return
        with endpoint.lock:
            old, endpoint.backend = endpoint.backend, backend
        endpoint.pending = None
        self._save(endpoint.name, config_name, "InService", endpoint.port, None)
        if old is not None:
            threading.Thread(target=self._retire, args=(old,), daemon=True).start()

    def _retire(self, backend: _Backend) -> None:
        backend.retiring = True
        deadline = time.monotonic() + self._drain
        with backend.idle:
            while backend.inflight > 0 and time.monotonic() < deadline:
                backend.idle.wait(timeout=max(0.0, deadline - time.monotonic()))
        terminate_gracefully(backend.proc, 5)

    def _start_backend(self, endpoint: _Endpoint, config_name: str) -> _Backend:
        endpoint_name = endpoint.name
        model_name = self._config(config_name)
        model = self._db.query("SELECT * FROM hosting_models WHERE name = ?", (model_name,))[0]
        base = self.root / "models" / model_name
        model_dir, code_dir = base / "model", base / "code"
        if not model_dir.exists():
            unpack(self._artifacts.local_path(model["artifact"]), str(model_dir))
        if model["code"] and not code_dir.exists():
            unpack(self._artifacts.local_path(model["code"]), str(code_dir))
        argv = [self._python, "-m", "lambda_pipeline.adapters.local.model_server", "--model-dir", str(model_dir)]
        if model["code"] and model["entry_point"]:
            argv += ["--code-dir", str(code_dir), "--program", model["entry_point"]]
        log_path = self.root / "logs" / f"{endpoint_name}-{config_name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "ab")
        env = dict(os.environ)
        argv[0], server_path, env["SAGEBUILD_FRAMEWORK"] = self._environment(
            model["artifact"], log, str(code_dir) if code_dir.is_dir() else None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [server_path, env.get("PYTHONPATH")]))
        env["SAGEBUILD_OWNER"] = self._owner
        workers = self._workers() if callable(self._workers) else self._workers
        if workers is not None:
            env[WORKERS_ENV] = str(workers)
        env["SAGEMAKER_PROGRAM"] = model["entry_point"] or ""
        env["SAGEMAKER_SUBMIT_DIRECTORY"] = str(code_dir)
        holder: dict[str, _Backend] = {}
        proc = spawn_supervised(argv, cwd=str(base), env=env, stdout=subprocess.PIPE, stderr=log,
                                on_exit=lambda p: self._on_backend_exit(endpoint_name, holder.get("b"), p),
                                name=f"{endpoint_name}-{config_name}")
        log.close()
        endpoint.starting.add(proc)
        try:
            port, pids = self._read_port(proc, log_path)
            backend = _Backend(config_name, proc, port, pids)
            holder["b"] = backend
            deadline = time.monotonic() + self._ready_timeout
            while not _ping(port, timeout=1.0):
                if proc.poll() is not None or time.monotonic() > deadline:
                    terminate_gracefully(proc, 2)
                    raise SageBuildError(f"the model server for {config_name} did not answer /ping: "
                                         + _tail(log_path))
                time.sleep(0.05)
        finally:
            endpoint.starting.discard(proc)
        return backend

    @property
    def _owner(self) -> str:
        return f"endpoint:{self.root}"

    def _environment(self, artifact: str, log: Any, code_dir: str | None) -> tuple[str, str, str]:
        """The interpreter, import path and framework of a model's server: the environment it was
        trained in (see environments.py), else this process's own Python with sklearn defaults."""
        spec = model_environment_spec(self._artifacts.local_path(artifact)) if self._environments else None
        if self._environments is None or spec is None:
            return self._python, str(Path(__file__).resolve().parents[3]), "sklearn"
        choice, requirements = spec
        environment = self._environments.prepare(choice, requirements, lambda line: log.write(line.encode() + b"\n"),
                                                 cwd=code_dir)
        log.flush()
        return environment.python, environment.server_path, choice.framework

    def _read_port(self, proc: subprocess.Popen[bytes], log_path: Path) -> tuple[int, list[int]]:
        """The server's first stdout line, written once every worker serves: (port, pids)."""
        box: dict[str, bytes] = {}
        reader = threading.Thread(target=lambda: box.setdefault("line", proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout=self._ready_timeout)
        line = box.get("line", b"")
        try:
            announced = json.loads(line)
            return int(announced["port"]), [int(pid) for pid in announced.get("pids", [proc.pid])]
        except (ValueError, KeyError, TypeError):
            terminate_gracefully(proc, 2)
            proc.wait(timeout=10)
            raise SageBuildError(f"the model server did not start: {_tail(log_path)}") from None

    def _on_backend_exit(self, endpoint_name: str, backend: _Backend | None, proc: subprocess.Popen[bytes]) -> None:
        endpoint = self._endpoints.get(endpoint_name)
        if (self._closing or backend is None or backend.retiring or endpoint is None
                or endpoint.backend is not backend):
            return
        logger.error("live model server exited; restarting it",
                     extra={"endpoint": endpoint_name, "returncode": proc.returncode})
        with endpoint.lock:
            endpoint.backend = None
        self._save(endpoint_name, None, "Creating", endpoint.port,
                   f"the model server exited with code {proc.returncode}; restarting")
        endpoint.pending = backend.config_name
        threading.Thread(target=self._roll_out, args=(endpoint, backend.config_name, True), daemon=True).start()

    def _bind(self, endpoint: _Endpoint, port: int) -> LocalHTTPServer:
        server = LocalHTTPServer(("127.0.0.1", port), _proxy_handler(endpoint))
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                         name=f"endpoint-{endpoint.name}", daemon=True).start()
        return server

    def _save(self, name: str, config_name: str | None, status: str, port: int | None,
              reason: str | None) -> None:
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO hosting_endpoints (name, config_name, status, port, failure_reason, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
                " config_name = COALESCE(excluded.config_name, config_name), status = excluded.status,"
                " port = COALESCE(excluded.port, port), failure_reason = excluded.failure_reason,"
                " updated_at = excluded.updated_at",
                (name, config_name, status, port, reason, self._clock()))
        if status in ("InService", "Failed"):
            self.events.emit("endpoint", name)

    def _endpoint(self, name: str) -> _Endpoint:
        if name not in self._endpoints:
            raise NotFound(f"no endpoint {name!r}")
        return self._endpoints[name]

    def _row(self, name: str) -> Any:
        rows = self._db.query("SELECT * FROM hosting_endpoints WHERE name = ?", (name,))
        if not rows:
            raise NotFound(f"no endpoint {name!r}")
        return rows[0]

    def _config(self, config_name: str) -> str:
        rows = self._db.query("SELECT model_name FROM hosting_endpoint_configs WHERE name = ?", (config_name,))
        if not rows:
            raise NotFound(f"no endpoint config {config_name!r}")
        return rows[0]["model_name"]


def _ping(port: int, timeout: float) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        conn.request("GET", "/ping")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return " | ".join(text[-lines:]) or "it wrote nothing to its log"


def _proxy_handler(endpoint: _Endpoint) -> type[BaseHTTPRequestHandler]:
    class Proxy(OneWriteHandler):
        def log_message(self, fmt: str, *args: Any) -> None:
            pass

        def _reply(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_whole(status, body, [(k, v) for k, v in headers
                                           if k.lower() not in _HOP_HEADERS and k.lower() not in ("server", "date")])

        def _forward(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            backend = endpoint.acquire()
            if backend is None:
                self._reply(503, b'{"error": "the endpoint has no model in service yet"}',
                            [("Content-Type", "application/json")])
                return
            try:
                conn = http.client.HTTPConnection("127.0.0.1", backend.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
                conn.request(method, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status, resp_headers = resp.status, resp.getheaders()
                conn.close()
            except OSError as exc:
                status, data = 502, json.dumps({"error": f"model server unreachable: {exc}"}).encode()
                resp_headers = [("Content-Type", "application/json")]
            finally:
                _release(backend)
            self._reply(status, data, resp_headers)

        def do_GET(self) -> None:
            self._forward("GET")

        def do_POST(self) -> None:
            self._forward("POST")

    return Proxy
