"""Local adapters: a folder for artifacts, SQLite for the ledger, subprocesses for SageMaker."""
from .artifacts import LocalArtifactStore
from .config_store import FileConfigStore
from .ledger import SqliteLedger
from .notifier import ConsoleNotifier
from .training import LocalTrainingPlatform
from .hosting import LocalHostingPlatform

__all__ = ["LocalArtifactStore", "FileConfigStore", "SqliteLedger", "ConsoleNotifier",
           "LocalTrainingPlatform", "LocalHostingPlatform"]
