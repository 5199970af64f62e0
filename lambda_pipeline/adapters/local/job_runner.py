"""The process a local training job runs under, which outlives the engine that started it.

``python -m lambda_pipeline.adapters.local.job_runner WORK -- PYTHON SCRIPT [ARGS...]`` runs
the training script in ``WORK/code``, appends its stdout and stderr to ``WORK/job.log`` as they
come, and when the script ends writes ``WORK/exit.json`` (its exit code and last stderr lines,
atomically). The engine starts it in a session of its own and without a death signal, so a
``kill -9`` of the engine leaves the training running: the next engine adopts it by PID and
learns how it ended from ``exit.json``, even if it ended while no engine ran. SIGTERM and SIGINT
are passed to the script (a stop), and the runner still records how it ended.
"""
from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import IO, Any

__all__ = ["EXIT_FILE", "LOG_FILE", "read_exit", "main"]

EXIT_FILE = "exit.json"
LOG_FILE = "job.log"
_TAIL = 20


def read_exit(work: str | os.PathLike[str]) -> dict[str, Any] | None:
    """How a job's script ended (``{"rc": int, "stderr_tail": [str]}``), or None while it runs."""
    try:
        return json.loads((Path(work) / EXIT_FILE).read_text())
    except (OSError, ValueError):
        return None


def _pump(stream: IO[bytes], log: IO[bytes], lock: threading.Lock, tail: "collections.deque[str] | None") -> None:
    for line in iter(stream.readline, b""):
        if tail is not None and line.strip():
            tail.append(line.decode("utf-8", "replace").rstrip())
        with lock:
            log.write(line)
    stream.close()


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: job_runner WORK -- PYTHON SCRIPT [ARGS...]", file=sys.stderr)
        return 2
    work, command = Path(argv[0]), argv[2:]
    (work / EXIT_FILE).unlink(missing_ok=True)
    log = open(work / LOG_FILE, "ab", buffering=0)
    lock = threading.Lock()
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
    try:
        child = subprocess.Popen(command, cwd=str(work / "code"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 stdin=subprocess.DEVNULL)
    except OSError as exc:
        tail.append(f"the training script could not start: {exc}")
        rc = 127
    else:
        for sig in (signal.SIGTERM, signal.SIGINT):  # a stop: the script gets it, the runner records the end
            signal.signal(sig, lambda number, _frame: child.send_signal(number))
        readers = [threading.Thread(target=_pump, args=(child.stdout, log, lock, None), daemon=True),
                   threading.Thread(target=_pump, args=(child.stderr, log, lock, tail), daemon=True)]
        for reader in readers:
            reader.start()
        rc = child.wait()
        for reader in readers:
            reader.join(timeout=10)
    log.close()
    done = work / f".{EXIT_FILE}.tmp"
    done.write_text(json.dumps({"rc": rc, "stderr_tail": list(tail)}))
    os.replace(done, work / EXIT_FILE)
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a process
    sys.exit(main(sys.argv[1:]))
