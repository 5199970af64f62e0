"""The model server: one-write responses with TCP_NODELAY, pre-forked workers, /ping readiness."""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import joblib
import pytest
from sklearn.datasets import load_wine
from sklearn.tree import DecisionTreeClassifier

from lambda_pipeline.adapters.local.httpserver import LocalHTTPServer, OneWriteHandler
from lambda_pipeline.adapters.local.model_server import resolve_workers
from tests.helpers import REPO, SAMPLE_ROW

ENV = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
ENV.pop("SAGEMAKER_MODEL_SERVER_WORKERS", None)

# A worker that takes a while to come up: /ping must say 503 until it serves.
SLOW_SECOND_WORKER = r'''
import json, sys, time
from lambda_pipeline.adapters.local import model_server as ms
from lambda_pipeline.adapters.local.prefork import run_prefork
model_dir, delay = sys.argv[1], float(sys.argv[2])
handlers = ms.ModelHandlers()
model = handlers.model_fn(model_dir)
listener = ms.listen(0)
print(json.dumps({"port": listener.getsockname()[1]}), flush=True)
def serve(index, board):
    if index == 1:
        time.sleep(delay)
    ms.serve_worker(listener, model, handlers, index, board)
sys.exit(run_prefork(listener, 2, serve, lambda pids: print(json.dumps({"pids": pids}), flush=True)))
'''


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    x, y = load_wine(return_X_y=True)
    joblib.dump(DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y), folder / "model.joblib")
    return folder


def start(model_dir, *args, env=None):
    proc = subprocess.Popen([sys.executable, "-m", "lambda_pipeline.adapters.local.model_server", "--model-dir",
                             str(model_dir), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env or ENV, cwd=str(REPO))
    line = proc.stdout.readline()
    if not line:
        proc.wait(timeout=10)
        return proc, None
    return proc, json.loads(line)


def stop(proc):
    if proc.poll() is None:
        proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()
    proc.stderr.close()


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children(pid):
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return sorted(found)


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def raw_exchange(port, request: bytes) -> bytes:
    """Send one request; return what a single recv() gets (the connection stays keep-alive)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        return sock.recv(65536)


def whole(response: bytes) -> bool:
    head, _, body = response.partition(b"\r\n\r\n")
    length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    return len(body) == length


def post(body: str) -> bytes:
    data = body.encode()
    return (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data)) + data


# -- one write, TCP_NODELAY ----------------------------------------------------------------------
def test_one_write_handler_writes_once_on_a_nodelay_socket():
    writes = []

    class Handler(OneWriteHandler):
        def log_message(self, *args):
            pass

        def setup(self):
            super().setup()
            real = self.wfile

            class Counting:
                def write(self, data):
                    writes.append(bytes(data))
                    return real.write(data)

                def flush(self):
                    real.flush()
            self.wfile = Counting()

        def do_GET(self):
            nodelay = self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            self.send_whole(200, b'{"nodelay": %d}' % nodelay, [("Content-Type", "application/json")])

    server = LocalHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        response = raw_exchange(server.server_address[1], b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    finally:
        server.shutdown()
        server.server_close()
    assert whole(response) and response.endswith(b'{"nodelay": 1}')
    assert len(writes) == 1 and writes[0] == response
    assert b"Content-Length: 14\r\n" in response and b"Content-Type: application/json\r\n" in response


def test_model_server_answers_each_request_in_one_segment(model_dir):
    proc, announced = start(model_dir, "--workers", "1")
    try:
        port = announced["port"]
        ping = raw_exchange(port, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert ping.startswith(b"HTTP/1.1 200") and whole(ping)
        answer = raw_exchange(port, post(SAMPLE_ROW))
        assert answer.startswith(b"HTTP/1.1 200") and whole(answer) and answer.endswith(b"[0]")
        refused = raw_exchange(port, post("1,2"))
        assert refused.startswith(b"HTTP/1.1 400") and whole(refused)
    finally:
        stop(proc)


# -- workers ------------------------------------------------------------------------------------
def test_workers_come_from_the_flag_then_the_sagemaker_variable_then_the_cpu_count(monkeypatch):
    assert resolve_workers(3, {"SAGEMAKER_MODEL_SERVER_WORKERS": "5"}) == 3
    assert resolve_workers(None, {"SAGEMAKER_MODEL_SERVER_WORKERS": "5"}) == 5
    assert resolve_workers(None, {}) == min(len(os.sched_getaffinity(0)), 64)
    for bad in ("0", "65", "two", "1.5"):
        with pytest.raises(ValueError, match="SAGEMAKER_MODEL_SERVER_WORKERS must be an integer from 1 to 64"):
            resolve_workers(None, {"SAGEMAKER_MODEL_SERVER_WORKERS": bad})
    with pytest.raises(ValueError, match="--workers must be an integer from 1 to 64, got 0"):
        resolve_workers(0, {})


def test_server_forks_the_workers_the_variable_asks_for_and_stops_them_all(model_dir):
    proc, announced = start(model_dir, env=dict(ENV, SAGEMAKER_MODEL_SERVER_WORKERS="3"))
    try:
        master, *workers = announced["pids"]
        assert master == proc.pid and len(workers) == 3
        assert children(master) == sorted(workers)
    finally:
        stop(proc)
    assert wait_for(lambda: not any(alive(pid) for pid in workers), timeout=5)


def test_a_bad_worker_count_fails_to_start_naming_the_variable(model_dir):
    proc, announced = start(model_dir, env=dict(ENV, SAGEMAKER_MODEL_SERVER_WORKERS="lots"))
    try:
        assert announced is None and proc.returncode == 1
        assert b"SAGEMAKER_MODEL_SERVER_WORKERS must be an integer from 1 to 64, got 'lots'" in proc.stderr.read()
    finally:
        stop(proc)


def test_ping_is_503_until_every_worker_serves(model_dir):
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SECOND_WORKER, str(model_dir), "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=str(REPO))
    try:
        port = json.loads(proc.stdout.readline())["port"]
        early = raw_exchange(port, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
        assert early.startswith(b"HTTP/1.1 503") and b"1 of 2 workers are serving" in early
        assert raw_exchange(port, post(SAMPLE_ROW)).startswith(b"HTTP/1.1 200")  # the first worker serves
        pids = json.loads(proc.stdout.readline())["pids"]  # printed once both serve
        assert len(pids) == 2
        assert raw_exchange(port, b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 200")
    finally:
        stop(proc)


def test_a_dead_worker_is_forked_again_and_a_dead_master_takes_its_workers(model_dir):
    proc, announced = start(model_dir, "--workers", "2")
    try:
        master, first, second = announced["pids"]
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: len(children(master)) == 2 and first not in children(master))
        replacement = next(pid for pid in children(master) if pid != second)
        assert wait_for(lambda: raw_exchange(announced["port"], b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
                        .startswith(b"HTTP/1.1 200"))
        assert all(raw_exchange(announced["port"], post(SAMPLE_ROW)).startswith(b"HTTP/1.1 200")
                   for _ in range(6))
        os.kill(master, signal.SIGKILL)  # no SIGTERM handler runs: the kernel's death signal ends the workers
        assert wait_for(lambda: not alive(second) and not alive(replacement), timeout=5)
    finally:
        stop(proc)
