"""Endpoint latency and throughput against the model's own time, for the wine sample.

One run: build v1 of the sample with the local engine (default ``deploy.workers`` unless
--workers), then
- in process: the sample's ``predict_fn`` + ``output_fn`` on the sample row (parsed once), in a
  fresh interpreter;
- one client, keep-alive, through the endpoint's stable port: --n requests, in --rounds batches
  alternating with in-process batches (the machine's load drifts: both see the same);
- four clients (--clients), keep-alive, for --seconds: requests per second.
``single_client_ratio`` = endpoint p50 / in-process p50; ``throughput_ratio`` = four-client
req/s / (CPUs / in-process p50 seconds), the rate the work alone allows on every CPU. Memory:
RSS and PSS summed over the endpoint's model-server processes (master and workers). The last
line is one JSON object. Targets: single_client_ratio <= 1.25, throughput_ratio >= 0.7.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SAMPLE = b"13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


IN_PROCESS = r'''
import json, sys, time
from lambda_pipeline.adapters.local.model_server import ModelHandlers, load_user_module
model_dir, code_dir, sample = sys.argv[1], sys.argv[2], sys.argv[3].encode()
handlers = ModelHandlers(load_user_module(code_dir, "inference.py"))
model = handlers.model_fn(model_dir)
data = handlers.input_fn(sample, "text/csv")
for line in sys.stdin:  # one batch size per line; answers the seconds of each call
    times = []
    for i in range(int(line)):
        t0 = time.perf_counter()
        handlers.output_fn(handlers.predict_fn(data, model), "application/json")
        times.append(time.perf_counter() - t0)
    print(json.dumps(times), flush=True)
'''


class InProcess:
    """The endpoint's own work, ``predict_fn`` + ``output_fn``, timed in a fresh interpreter (the
    bench process also runs the engine) that answers batches on request, so batches can
    alternate with the endpoint's while the machine's load drifts."""

    def __init__(self, model_dir: Path, code_dir: Path) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
        self._proc = subprocess.Popen([sys.executable, "-c", IN_PROCESS, str(model_dir), str(code_dir),
                                       SAMPLE.decode()], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      text=True, env=env)

    def batch(self, n: int) -> list[float]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(f"{n}\n")
        self._proc.stdin.flush()
        return [float(t) for t in json.loads(self._proc.stdout.readline())]

    def close(self) -> None:
        self._proc.kill()
        self._proc.wait()


class OneClient:
    """One keep-alive client of the endpoint."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def batch(self, n: int) -> list[float]:
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            self._conn.request("POST", "/invocations", body=SAMPLE, headers={"Content-Type": "text/csv"})
            resp = self._conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise SystemExit(f"the endpoint answered {resp.status}")
            times.append(time.perf_counter() - t0)
        return times

    def close(self) -> None:
        self._conn.close()


def many_clients(port: int, clients: int, seconds: float) -> dict[str, Any]:
    stop = threading.Event()
    counting = threading.Event()
    lock = threading.Lock()
    latencies: list[float] = []
    failures = [0]

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while not stop.is_set():
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/invocations", body=SAMPLE, headers={"Content-Type": "text/csv"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if counting.is_set():
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    failures[0] += 0 if ok else 1
        conn.close()

    threads = [threading.Thread(target=run, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(1.0)  # warm up every connection
    counting.set()
    started = time.perf_counter()
    time.sleep(seconds)
    counting.clear()
    elapsed = time.perf_counter() - started
    stop.set()
    for thread in threads:
        thread.join()
    return {"requests": len(latencies), "failures": failures[0], "rps": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2)}


def memory(pids: list[int]) -> dict[str, Any]:
    """RSS and PSS (kB from /proc) of each process, summed in MB."""
    rss, pss = [], []
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
            rss.append(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))))
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            pss.append(int(next(line.split()[1] for line in rollup.splitlines() if line.startswith("Pss:"))))
        except (OSError, StopIteration):
            continue
    return {"processes": len(rss), "rss_mb": round(sum(rss) / 1024, 1), "pss_mb": round(sum(pss) / 1024, 1),
            "rss_per_process_mb": [round(v / 1024, 1) for v in rss]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=400, help="requests of the one-client test (and in-process calls)")
    parser.add_argument("--rounds", type=int, default=10, help="in-process and endpoint batches alternate this often")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, default=None, help="deploy.workers (default: the CPU count)")
    args = parser.parse_args()
    from infrastructure.local.service import LocalService
    from lambda_pipeline.adapters.local.prefork import cpu_count
    from sagebuild.project import copy_example
    from tests.helpers import edit_config

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "wine"
        copy_example("wine", project)
        if args.workers is not None:
            edit_config(project, deploy={"workers": args.workers})
        with LocalService(str(project)) as service:
            build = service.builds.start("bench endpoint latency", source="bench")
            while not build.done:
                time.sleep(0.05)
                build = service.builds.get(build.id)
            if build.status != "SUCCEEDED":
                raise SystemExit(f"build failed: {build.failure_reason}")
            endpoint = service.builds.endpoints()[0]
            port = int(str(endpoint.url).rsplit(":", 1)[1])
            model_dir = next((Path(service.paths.root) / "endpoints" / "models").glob("*/model"))
            work, client = InProcess(model_dir, project / "model"), OneClient(port)
            try:
                work.batch(20), client.batch(20)  # warm-up
                inproc: list[float] = []
                single: list[float] = []
                for _ in range(args.rounds):  # alternate, so both see the same load
                    inproc += work.batch(args.n // args.rounds)
                    single += client.batch(args.n // args.rounds)
                many = many_clients(port, args.clients, args.seconds)
                inproc += work.batch(args.n // 2)
            finally:
                work.close()
                client.close()
            pids = service.hosting.server_pids(endpoint.name)
            mem = memory(pids)
    cpus = cpu_count()
    inproc_p50 = statistics.median(inproc)
    single_p50 = statistics.median(single)
    work_limit = cpus / inproc_p50
    result = {
        "cpus": cpus, "workers": len(pids) - 1,
        "in_process_p50_ms": round(inproc_p50 * 1000, 2), "in_process_mean_ms": round(statistics.fmean(inproc) * 1000, 2),
        "single_client_p50_ms": round(single_p50 * 1000, 2),
        "single_client_p99_ms": round(percentile(single, 0.99) * 1000, 2),
        "single_client_ratio": round(single_p50 / inproc_p50, 3),
        "clients": args.clients, "many_clients": many, "work_limit_rps": round(work_limit, 1),
        "throughput_ratio": round(many["rps"] / work_limit, 3),
        "memory_per_endpoint": mem,
        "loadavg_before": [round(v, 2) for v in load_before], "loadavg_after": [round(v, 2) for v in os.getloadavg()],
        "targets": {"single_client_ratio": 1.25, "throughput_ratio": 0.7},
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
