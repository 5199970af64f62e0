"""Every adapter conforms to its port. Nothing imports this module at run time: mypy checks it
(``make test`` runs mypy), so an adapter that drops or changes a port method fails the build."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover - read by mypy only
    from infrastructure.local.builds import EngineBuilds, EngineExecutor

    from .adapters.aws.codebuild import CodeBuildImageBuilder
    from .adapters.aws.dynamodb_ledger import DynamoDBLedger
    from .adapters.aws.sagemaker import SageMakerHosting, SageMakerTraining
    from .adapters.aws.sfn_builds import StepFunctionsBuilds
    from .adapters.aws.sfn_executor import StepFunctionsExecutor
    from .adapters.aws.sns_notifier import SnsNotifier
    from .adapters.aws.stores import S3ArtifactStore, S3SourceStore, SsmConfigStore
    from .adapters.local.artifacts import LocalArtifactStore
    from .adapters.local.config_store import FileConfigStore
    from .adapters.local.hosting import LocalHostingPlatform
    from .adapters.local.http_builds import HttpBuilds
    from .adapters.local.ledger_builds import LedgerBuilds
    from .adapters.local.ledger import SqliteLedger
    from .adapters.local.notifier import ConfiguredNotifier
    from .adapters.local.source import ProjectSourceStore
    from .adapters.local.training import LocalTrainingPlatform
    from .ports import (ArtifactStore, Builds, ConfigStore, Executor, HostingPlatform, ImageBuilder, Ledger,
                        Notifier, SourceStore, TrainingPlatform)

    def _ledgers(a: SqliteLedger, b: DynamoDBLedger) -> tuple[Ledger, Ledger]:
        return a, b

    def _artifacts(a: LocalArtifactStore, b: S3ArtifactStore) -> tuple[ArtifactStore, ArtifactStore]:
        return a, b

    def _configs(a: FileConfigStore, b: SsmConfigStore) -> tuple[ConfigStore, ConfigStore]:
        return a, b

    def _sources(a: ProjectSourceStore, b: S3SourceStore) -> tuple[SourceStore, SourceStore]:
        return a, b

    def _training(a: LocalTrainingPlatform, b: SageMakerTraining) -> tuple[TrainingPlatform, TrainingPlatform]:
        return a, b

    def _hosting(a: LocalHostingPlatform, b: SageMakerHosting) -> tuple[HostingPlatform, HostingPlatform]:
        return a, b

    def _notifiers(a: ConfiguredNotifier, b: SnsNotifier) -> tuple[Notifier, Notifier]:
        return a, b

    def _images(a: CodeBuildImageBuilder) -> ImageBuilder:
        return a

    def _executors(a: EngineExecutor, b: StepFunctionsExecutor) -> tuple[Executor, Executor]:
        return a, b

    def _builds(a: EngineBuilds, b: StepFunctionsBuilds, c: HttpBuilds,
                d: LedgerBuilds) -> tuple[Builds, Builds, Builds, Builds]:
        return a, b, c, d
