"""The embedded engine: moto's ASL interpreter, the ledger, the local platform, an HTTP API."""
from .engine import Engine
from .service import LocalService, StatePaths

__all__ = ["Engine", "LocalService", "StatePaths"]
