"""Render the CloudFormation template from ``templates/stack.yaml.j2``.

The state machine inside is the same ASL the local engine runs (``render_definition``), with
each Task's ``Resource`` a ``${...FunctionArn}`` placeholder filled by DefinitionSubstitutions.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jinja2

from lambda_pipeline.definition import TASK_FUNCTIONS, render_definition

__all__ = ["VARIANTS", "STACK_POLLING", "render_template", "render_all", "task_functions"]

# Structural variants (the rest, like spot training or an existing bucket, are stack parameters).
VARIANTS: dict[str, dict[str, bool]] = {
    "default": {"image_build": False, "notebook": False},
    "image-build": {"image_build": True, "notebook": False},
    "notebook": {"image_build": False, "notebook": True},
}

_env = jinja2.Environment(loader=jinja2.PackageLoader("infrastructure.aws", "templates"),
                          undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=True)


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def task_functions(image_build: bool) -> list[dict[str, str]]:
    """The Lambda function of each Task the definition uses: logical id and substitution key."""
    used = {s["Resource"] for s in render_definition(image_build=image_build, resource=lambda t: t)["States"].values()
            if s["Type"] == "Task"}
    return [{"name": t, "logical": f"Step{_camel(t)}Function", "placeholder": f"{_camel(t)}FunctionArn"}
            for t in TASK_FUNCTIONS if t in used]


# Chosen with bench/transitions.py: 37 transitions for a 1-hour build with a 15-minute endpoint
# update, +3 per doubling of training time (the cap sits above the 4-hour max). The price: a job is
# noticed at most ~1x its elapsed time late (60 s, 120 s, ... polls).
STACK_POLLING = {"initial_seconds": 60, "max_seconds": 14400, "backoff_rate": 2.0}


def _stack_config() -> dict[str, Any]:
    """The pipeline config the stack starts with (SSM); ${...} are CloudFormation substitutions."""
    return {
        "pipeline": "${AWS::StackName}",
        "training": {"source_dir": "model", "entry_point": "train.py", "hyperparameters": {},
                     "channels": {"train": "s3://${DataBucketRef}/data/train", "validation": "s3://${DataBucketRef}/data/validation"},
                     "metric_definitions": [{"Name": "validation:accuracy", "Regex": "validation accuracy: ([0-9.]+)"}],
                     "max_runtime_seconds": 14400, "instance_type": "${TrainingInstanceType}"},
        "gate": {"metric": "validation:accuracy", "minimum": 0.8},
        "deploy": {"endpoint": "${AWS::StackName}-endpoint", "entry_point": "inference.py"},
        "polling": dict(STACK_POLLING),
        "skill": {"skill_id": "${AlexaSkillId}", "allowed_user_ids": [], "others_can_query": True},
    }


def _dashboard() -> dict[str, Any]:
    def widget(title: str, metrics: list[list[Any]], x: int, y: int) -> dict[str, Any]:
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
                "properties": {"title": title, "region": "${AWS::Region}", "stat": "Sum", "period": 300,
                               "metrics": metrics}}
    sm = "${BuildStateMachine}"
    endpoint = "${AWS::StackName}-endpoint"
    return {"widgets": [
        widget("Builds", [["AWS/States", "ExecutionsSucceeded", "StateMachineArn", sm],
                          [".", "ExecutionsFailed", ".", "."], [".", "ExecutionsAborted", ".", "."]], 0, 0),
        widget("Endpoint traffic", [["AWS/SageMaker", "Invocations", "EndpointName", endpoint, "VariantName", "AllTraffic"],
                                    [".", "Invocation5XXErrors", ".", ".", ".", "."]], 12, 0),
        widget("Endpoint latency (p99, microseconds)", [["AWS/SageMaker", "ModelLatency", "EndpointName", endpoint,
                                                         "VariantName", "AllTraffic", {"stat": "p99"}]], 0, 6),
        widget("Step errors", [["AWS/Lambda", "Errors", "FunctionName", "${SkillFunction}"]], 12, 6),
    ]}


def render_template(image_build: bool = False, notebook: bool = False) -> str:
    """The template of one variant, as YAML text."""
    tasks = task_functions(image_build)
    definition = render_definition(image_build=image_build, resource=lambda t: "${" + f"{_camel(t)}FunctionArn" + "}")
    config_text = json.dumps(_stack_config(), indent=2).replace("${DataBucketRef}", "${DataBucketResolved}")
    return _env.get_template("stack.yaml.j2").render(
        image_build=image_build, notebook=notebook, tasks=tasks, definition=json.dumps(definition, indent=1),
        config_json=config_text, dashboard_json=json.dumps(_dashboard()))


def render_all(out: Path) -> list[Path]:
    """Write every variant to ``out/<variant>.yaml``; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, flags in VARIANTS.items():
        path = out / f"{name}.yaml"
        path.write_text(render_template(**flags))
        written.append(path)
    return written
