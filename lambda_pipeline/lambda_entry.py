"""Lambda entry points on AWS: one per Task of the state machine, built from the environment.

The CloudFormation stack sets the variables; the first call in a container builds the AWS
adapters once (cold start), later calls reuse them.
"""
from __future__ import annotations

import os
from typing import Any

from . import runtime
from .ports import Ports
from .steps.handlers import HANDLERS

__all__ = ["ports_from_environment"] + sorted(HANDLERS)


def ports_from_environment(env: dict[str, str] | None = None, session: Any = None) -> Ports:
    """AWS adapters for the ports, named by the stack's environment variables."""
    from .adapters.aws import DynamoDBLedger, SageMakerHosting, SageMakerTraining, SnsNotifier
    from .adapters.aws.stores import S3ArtifactStore, S3SourceStore, SsmConfigStore

    env = dict(os.environ if env is None else env)
    artifacts = S3ArtifactStore(env["SAGEBUILD_ARTIFACTS_BUCKET"], boto3_session=session)
    image = env["SAGEBUILD_TRAINING_IMAGE"]
    role = env["SAGEBUILD_SAGEMAKER_ROLE"]
    return Ports(
        config=SsmConfigStore(env["SAGEBUILD_CONFIG_PARAMETER"], boto3_session=session),
        ledger=DynamoDBLedger(env["SAGEBUILD_LEDGER_TABLE"], boto3_session=session),
        artifacts=artifacts,
        training=SageMakerTraining(role, image, instance_count=int(env.get("SAGEBUILD_TRAINING_INSTANCE_COUNT", "1")),
                                   use_spot=env.get("SAGEBUILD_USE_SPOT", "false") == "true", boto3_session=session),
        hosting=SageMakerHosting(role, image, instance_type=env.get("SAGEBUILD_HOSTING_INSTANCE_TYPE", "ml.t2.medium"),
                                 instance_count=int(env.get("SAGEBUILD_HOSTING_INSTANCE_COUNT", "1")),
                                 boto3_session=session),
        notifier=SnsNotifier(env["SAGEBUILD_STATUS_TOPIC"], boto3_session=session),
        source=S3SourceStore(artifacts, boto3_session=session),
    )


def _entry(name: str) -> Any:
    handler = HANDLERS[name]

    def entry(event: dict[str, Any], context: Any) -> Any:
        try:
            runtime.ports()
        except Exception:
            runtime.install(ports_from_environment())
        return handler(event, context)

    entry.__name__ = name
    entry.__doc__ = f"Lambda entry of the {name} step."
    return entry


for _name in HANDLERS:
    globals()[_name] = _entry(_name)
