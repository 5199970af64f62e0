"""Pre-fork: N worker processes accepting on one listening socket, kept at N by their master.

Why not gunicorn: the model server needs a master that loads the model once (workers share its
pages copy-on-write and start in milliseconds), a ``/ping`` that knows whether every worker is
up, and no extra dependency. Measured on the wine sample (bench/endpoint_latency.py) this keeps
one-client latency within a millisecond or two of the model's own time.

Workers die with their master (``PR_SET_PDEATHSIG``) and share its process group, so a signal
to the group, or the master's death, ends them all. A worker that exits is forked again; one
that keeps dying at once makes the master give up (exit 1) so its supervisor sees a failure.
"""
from __future__ import annotations

import ctypes
import gc
import logging
import mmap
import os
import signal
import socket
import sys
import time
import traceback
from typing import Callable

__all__ = ["ReadyBoard", "run_prefork", "cpu_count"]

logger = logging.getLogger("sagebuild.prefork")

_PR_SET_PDEATHSIG = 1
_STOP_GRACE_SECONDS = 5.0
_RESPAWN_LIMIT = 5          # deaths within _RESPAWN_WINDOW that make the master give up
_RESPAWN_WINDOW = 10.0


def cpu_count() -> int:
    """CPUs this process may run on (the affinity mask, as a container limits it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class ReadyBoard:
    """One byte per worker in memory shared across fork: 1 while that worker is serving."""

    def __init__(self, slots: int) -> None:
        self.slots = slots
        self._mem = mmap.mmap(-1, slots)

    def mark(self, index: int, ready: bool) -> None:
        self._mem[index] = 1 if ready else 0

    def ready_count(self) -> int:
        return self._mem[:].count(1)

    def all_ready(self) -> bool:
        return self.ready_count() == self.slots


def run_prefork(listener: socket.socket, workers: int, serve: Callable[[int, ReadyBoard], None],
                on_all_ready: Callable[[list[int]], None], start_timeout: float = 60.0) -> int:
    """Fork ``workers`` processes running ``serve(index, board)`` over ``listener``; supervise them.

    ``serve`` marks its slot ready and serves forever. ``on_all_ready(pids)`` runs in the master
    once every slot is ready. Returns the master's exit code (SIGTERM: 0 after the workers end).
    """
    board = ReadyBoard(workers)
    pids: dict[int, int] = {}  # pid -> slot
    deaths: list[float] = []
    gc.freeze()  # objects loaded so far stay shared: the GC will not touch (and copy) their pages

    def stop(*_: object) -> None:
        # Runs as a signal handler, maybe just after a waitpid whose pid is not yet popped:
        # wait until no child is left rather than until ``pids`` is empty.
        for pid in list(pids):
            _signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + _STOP_GRACE_SECONDS
        while time.monotonic() < deadline:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                os._exit(0)
            if pid:
                pids.pop(pid, None)
            else:
                time.sleep(0.005)
        for pid in list(pids):
            _signal(pid, signal.SIGKILL)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for index in range(workers):
        pids[_fork_worker(listener, index, board, serve)] = index
    deadline = time.monotonic() + start_timeout
    while not board.all_ready():
        dead = _reap(pids, board, block=False)
        if dead or time.monotonic() > deadline:
            print(f"model server worker(s) did not start: {dead or 'timed out'}", file=sys.stderr, flush=True)
            stop_workers(pids)
            return 1
        time.sleep(0.005)
    on_all_ready(sorted(pids))
    while True:
        for index, status in _reap(pids, board, block=True):
            now = time.monotonic()
            deaths[:] = [t for t in deaths if now - t < _RESPAWN_WINDOW] + [now]
            logger.error("model server worker %d exited (%s); forking it again", index, status)
            if len(deaths) >= _RESPAWN_LIMIT:
                print(f"model server workers keep dying ({len(deaths)} in {_RESPAWN_WINDOW:.0f} s); giving up",
                      file=sys.stderr, flush=True)
                stop_workers(pids)
                return 1
            pids[_fork_worker(listener, index, board, serve)] = index


def stop_workers(pids: dict[int, int]) -> None:
    for pid in list(pids):
        _signal(pid, signal.SIGKILL)
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass
        pids.pop(pid, None)


def _fork_worker(listener: socket.socket, index: int, board: ReadyBoard,
                 serve: Callable[[int, ReadyBoard], None]) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 1
    try:
        signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() == 1:  # the master died between fork and prctl
            os._exit(1)
        serve(index, board)
        code = 0
    except BaseException:  # a worker must never return into the master's code
        traceback.print_exc()
    finally:
        os._exit(code)


def _reap(pids: dict[int, int], board: ReadyBoard, block: bool) -> list[tuple[int, str]]:
    """Collect exited workers: [(slot, how it ended)]; their slots are marked not ready."""
    dead = []
    while pids:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
        index = pids.pop(pid, None)
        if index is not None:
            board.mark(index, False)
            how = (f"signal {os.WTERMSIG(status)}" if os.WIFSIGNALED(status)
                   else f"code {os.WEXITSTATUS(status)}")
            dead.append((index, how))
        block = False
    return dead


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass
