"""Child processes that never outlive the engine (except training jobs' runners, which the next
engine adopts: see ``job_runner.py``).

Each child is started by a supervisor thread that lives exactly as long as the child, with
``PR_SET_PDEATHSIG`` = SIGKILL: the kernel kills the child if its parent thread dies, which a
SIGKILL of the whole engine implies. Children run in their own session so a stop reaches
everything they started; ``SAGEBUILD_OWNER`` in their environment lets a restarted engine
find and kill strays (grandchildren do not get the death signal).
"""
from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
from pathlib import Path
from typing import IO, Callable

__all__ = ["spawn_supervised", "kill_tree", "find_marked_processes", "terminate_gracefully", "die_with_parent"]

_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True) if os.name == "posix" else None


def die_with_parent() -> None:
    """A ``preexec_fn``: the kernel SIGKILLs the child when the thread that started it dies."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def spawn_supervised(argv: list[str], *, cwd: str, env: dict[str, str], stdout: int | IO[bytes] | None,
                     stderr: int | IO[bytes] | None, on_exit: Callable[[subprocess.Popen[bytes]], None],
                     name: str = "child", outlive_engine: bool = False) -> subprocess.Popen[bytes]:
    """Start ``argv`` from a dedicated thread that waits for it, then calls ``on_exit(proc)``.

    ``outlive_engine``: no death signal (a training job's runner, which the next engine adopts).
    Returns the Popen once the process exists. Raises OSError if it cannot start.
    """
    ready = threading.Event()
    box: dict[str, object] = {}

    def supervise() -> None:
        try:
            proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=stdout, stderr=stderr,
                                    stdin=subprocess.DEVNULL, preexec_fn=None if outlive_engine else die_with_parent,
                                    start_new_session=True)
        except OSError as exc:
            box["error"] = exc
            ready.set()
            return
        box["proc"] = proc
        ready.set()
        proc.wait()
        on_exit(proc)

    threading.Thread(target=supervise, name=f"supervise-{name}", daemon=True).start()
    ready.wait()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["proc"]  # type: ignore[return-value]


def kill_tree(pid: int, sig: int = signal.SIGKILL) -> None:
    """Signal the process group led by ``pid`` (children share the session we gave it)."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        pass


def terminate_gracefully(proc: subprocess.Popen[bytes], grace_seconds: float) -> None:
    """SIGTERM the child's group, then SIGKILL it if still alive after ``grace_seconds``."""
    kill_tree(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid, signal.SIGKILL)


def find_marked_processes(marker: str) -> list[int]:
    """PIDs whose environment holds ``SAGEBUILD_OWNER=<marker>`` (Linux /proc)."""
    needle = f"SAGEBUILD_OWNER={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found
