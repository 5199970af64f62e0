"""Requests through an endpoint update and a rollback: failures and latency against steady state.

One run: build v1 of the sample, then keep four clients calling the endpoint (keep-alive, as
a service would) while (1) nothing changes, (2) build v2 deploys blue/green, (3) a rollback
puts v1 back. Requests are attributed to a phase by when they started: steady is a fixed
window before any change; update is the Deploy..VerifyLive steps of build 2; rollback is the
rollback call. The last line is one JSON object. Targets: 0 failures; p99 during a swap
<= 2x steady state.
"""
from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SAMPLE = b"13.2,1.78,2.14,11.2,100,2.65,2.76,0.26,1.28,4.38,1.05,3.4,1050"


class Load:
    """Client threads recording (start, seconds, ok) for every request."""

    def __init__(self, port: int, clients: int) -> None:
        self.port = port
        self.records: list[tuple[float, float, bool]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            started = time.time()
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/invocations", body=SAMPLE, headers={"Content-Type": "text/csv"})
                resp = conn.getresponse()
                resp.read()
                ok = resp.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            with self._lock:
                self.records.append((started, time.perf_counter() - t0, ok))

    def window(self, start: float, end: float) -> dict[str, float]:
        with self._lock:
            inside = [(s, ok) for t, s, ok in self.records if start <= t <= end]
        latencies = sorted(s * 1000 for s, _ in inside)
        if not latencies:
            return {"requests": 0, "failures": 0, "p50_ms": 0.0, "p99_ms": 0.0, "seconds": round(end - start, 2)}
        return {"requests": len(inside), "failures": sum(1 for _, ok in inside if not ok),
                "p50_ms": round(statistics.median(latencies), 2),
                "p99_ms": round(latencies[min(len(latencies) - 1, int(0.99 * (len(latencies) - 1) + 0.5))], 2),
                "seconds": round(end - start, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--steady-seconds", type=float, default=4.0)
    args = parser.parse_args()
    from infrastructure.local.service import LocalService
    from sagebuild.project import copy_example

    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "wine"
        copy_example("wine", project)
        with LocalService(str(project)) as service:
            builds = service.builds

            def build(reason: str, **hps: object) -> object:
                current = builds.start(reason, source="bench", hyperparameters=hps)
                while not current.done:
                    time.sleep(0.05)
                    current = builds.get(current.id)
                if current.status != "SUCCEEDED":
                    raise SystemExit(f"build failed: {current.failure_reason}")
                return current

            build("bench v1")
            endpoint = builds.endpoints()[0]
            load = Load(int(endpoint.url.rsplit(":", 1)[1]), args.clients)
            load.start()
            time.sleep(1.0)  # warm up the connections
            steady_start = time.time()
            time.sleep(args.steady_seconds)
            steady_end = time.time()
            second = build("bench v2", **{"n-estimators": 50})
            steps = {s.name: s for s in second.steps}
            update = (steps["Deploy"].started_at, steps["VerifyLive"].ended_at)
            time.sleep(0.5)
            rollback_start = time.time()
            builds.rollback("v1")
            rollback_end = time.time()
            time.sleep(0.5)
            load.stop()
    result = {"clients": args.clients, "steady": load.window(steady_start, steady_end),
              "update": load.window(*update), "rollback": load.window(rollback_start, rollback_end)}
    steady_p99 = result["steady"]["p99_ms"] or 1e-9
    result["p99_ratio_update"] = round(result["update"]["p99_ms"] / steady_p99, 2)
    result["p99_ratio_rollback"] = round(result["rollback"]["p99_ms"] / steady_p99, 2)
    result["failures"] = sum(result[k]["failures"] for k in ("steady", "update", "rollback"))
    result["requests"] = len(load.records)
    result["targets"] = {"failures": 0, "p99_ratio": 2.0}
    for phase in ("steady", "update", "rollback"):
        print(f"{phase:<9} {result[phase]}", file=sys.stderr)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
