"""Builds from new data: watch folders (watchdog); once changes settle, one trigger lists them."""
from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path
from typing import Any, Callable

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

__all__ = ["DataWatcher"]

logger = logging.getLogger(__name__)
_IGNORED_SUFFIXES = (".tmp", ".part", ".swp", "~", ".crdownload")


class DataWatcher(FileSystemEventHandler):
    """Collects created, changed and moved-in files under ``paths``; ``settle`` seconds after the
    last change, submits one data trigger naming them."""

    def __init__(self, project: Path, paths: list[str], submit: Callable[..., Any], settle: float) -> None:
        super().__init__()
        self.project = project
        self.paths = [(project / p).resolve() for p in paths]
        self._submit, self._settle = submit, settle
        self._changed: set[str] = set()
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._observer = Observer()

    def start(self) -> None:
        for path in self.paths:
            path.mkdir(parents=True, exist_ok=True)
            self._observer.schedule(self, str(path), recursive=True)
        self._observer.start()

    def stop(self) -> None:
        self._observer.stop()
        self._observer.join(timeout=5)
        if self._timer is not None:
            self._timer.cancel()

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory or event.event_type not in ("created", "modified", "moved", "closed"):
            return
        path = os.fsdecode(getattr(event, "dest_path", "") or event.src_path)
        name = os.path.basename(path)
        if name.startswith(".") or name.endswith(_IGNORED_SUFFIXES):
            return
        with self._lock:
            self._changed.add(os.path.relpath(path, self.project))
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self._settle, self._fire)
            self._timer.daemon = True
            self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            files, self._changed, self._timer = sorted(self._changed), set(), None
        if not files:
            return
        shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
        self._submit("data", f"data changed: {shown}", {"files": files, "at": time.time()})
