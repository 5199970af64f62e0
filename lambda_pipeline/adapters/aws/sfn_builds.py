"""Builds port on Step Functions: what the skill (on Lambda), the launch Lambdas and the notebook
client (``SageBuild.from_stack``) do with builds on AWS.

The rules are the build service's (:mod:`lambda_pipeline.build_service`); this adapter binds it
to the stack's state machine. Nothing polls: the stack's EventBridge rules call
:meth:`~lambda_pipeline.build_service.BuildService.execution_ended` when an execution ends and
:func:`lambda_pipeline.rollbacks.complete_from_event` when the endpoint changes state.
"""
from __future__ import annotations

import time
from typing import Any, Callable

from ... import rollbacks
from ...build_service import BuildService, execution_name
from ...model import EndpointInfo
from ...ports import Ports
from .sfn_executor import StepFunctionsExecutor

__all__ = ["StepFunctionsBuilds", "execution_name"]


class StepFunctionsBuilds(BuildService):
    """The Builds port over one stack's state machine and ledger.

    Args:
        ports: the AWS adapters (``lambda_entry.ports_from_environment``).
        state_machine_arn: the stack's build state machine.
    """

    def __init__(self, ports: Ports, state_machine_arn: str, boto3_client: Any = None, boto3_session: Any = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__(ports, StepFunctionsExecutor(state_machine_arn, boto3_client, boto3_session),
                         clock=clock, sleep=sleep)
        self.state_machine_arn = state_machine_arn

    def rollback(self, version: str | None = None) -> EndpointInfo:
        """Start the swap back and return at once (SageMaker takes minutes; Alexa waits 8 s).

        The result has status ``Updating`` and the version being restored; the endpoint's
        state-change event records the deployment and notifies when it serves.
        """
        plan, config_name = rollbacks.begin_rollback(self._ports, version, self._clock())
        return EndpointInfo(name=plan["endpoint"], status="Updating", endpoint_config=config_name,
                            model_version=plan["to"], url=None, updated_at=self._clock())
