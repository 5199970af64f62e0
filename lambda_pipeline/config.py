"""Pipeline configuration: schema, defaults, validation with errors that name the key.

The same JSON document lives in a file locally and in an SSM parameter on AWS. Locally the file
may carry ``//`` comment lines (``sagebuild init`` writes them); they are stripped before parsing.
"""
from __future__ import annotations

import copy
import difflib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError
from .frameworks import resolve_framework

__all__ = ["load_config_text", "validate_config", "strip_comments", "SCHEMA", "Field", "LOCAL_SKILL_ID",
           "LOCAL_USER_ID", "EVENTS"]

# What `sagebuild say` and a local `skill serve` use unless the config names a real skill and users.
LOCAL_SKILL_ID = "amzn1.ask.skill.sagebuild-local"
LOCAL_USER_ID = "amzn1.ask.account.sagebuild-local"

# Events a notification sink may subscribe to.
EVENTS = ("build.started", "build.succeeded", "build.failed", "build.gate_failed", "build.stopped",
          "build.interrupted", "model.rolled_back", "model.rollback_failed", "schedule.missed")

_NAME_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,40}[a-z0-9])?$")


@dataclass(frozen=True)
class Field:
    """One configuration key: its type, default, and what values it takes."""

    types: tuple[type, ...]
    doc: str
    default: Any = None
    required: bool = False
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None
    items: dict[str, "Field"] | None = field(default=None)  # schema of each list item (dict)


_NUM = (int, float)
MAX_HEARTBEAT_SECONDS = 24 * 3600
# Keys of older configs, with what replaced them: named in the error instead of a bare "unknown key".
_RETIRED = {"polling.initial_seconds": "polling.heartbeat_seconds (waits are event-driven now)",
            "polling.max_seconds": "polling.heartbeat_seconds (waits are event-driven now)",
            "polling.backoff_rate": "polling.heartbeat_seconds (waits are event-driven now)"}

SCHEMA: dict[str, Any] = {
    "pipeline": Field((str,), "Name of the pipeline; names the endpoint and the model versions.",
                      required=True, pattern=_NAME_RE),
    "training": {
        "entry_point": Field((str,), "Training script, relative to source_dir (SageMaker script mode).",
                             default="train.py"),
        "source_dir": Field((str,), "Folder holding the training and inference code.", default="."),
        "hyperparameters": Field((dict,), "Passed to the script as --name value (all strings).", default={}),
        "channels": Field((dict,), "Input channels: name -> data folder, relative to the project.",
                          default={}),
        "metric_definitions": Field((list,), "SageMaker-style metrics: [{Name, Regex}] over the job log.",
                                    default=[], items={"Name": Field((str,), "metric name", required=True),
                                                       "Regex": Field((str,), "regex, group 1 = value",
                                                                      required=True)}),
        "max_runtime_seconds": Field((int,), "Stop the job after this many seconds.", default=3600,
                                     minimum=1),
        "instance_type": Field((str,), "Where training runs; 'local' here, an ml.* type on AWS.",
                               default="local"),
        "framework": Field((str,), "What the script runs on: sklearn, xgboost, pytorch, tensorflow or custom "
                           "(only the code folder's requirements.txt); the SageMaker image on AWS, an environment "
                           "with the same packages locally.", default="sklearn"),
        "framework_version": Field((str,), "The SageMaker container version, e.g. 1.9-0 (sklearn), 3.2-0 "
                                   "(xgboost); default the newest SageBuild supports.", default=None),
    },
    "image": {
        "build": Field((bool,), "Build a code image before training (code package locally, CodeBuild on AWS).",
                       default=False),
        "uri": Field((str,), "The image a build trains and serves with; the image build step sets it in "
                     "the build's snapshot (empty: the stack's framework image).", default=None),
    },
    "gate": {
        "metric": Field((str,), "Metric the validation gate checks.", default=None),
        "minimum": Field(_NUM, "Lowest value of the metric that may go live.", default=None),
        "must_beat_live": Field((bool,), "The new model must also score at least the live model's value.",
                                default=False),
        "tolerance": Field(_NUM, "How far below the live model's value still passes.", default=0.0, minimum=0),
    },
    "deploy": {
        "endpoint": Field((str,), "Endpoint name; defaults to the pipeline name.", default=None,
                          pattern=_NAME_RE),
        "entry_point": Field((str,), "Inference script with model_fn/input_fn/predict_fn/output_fn.",
                             default=None),
        "port": Field((int,), "Local endpoint port on 127.0.0.1; 0 picks a free one and keeps it.",
                      default=0, minimum=0),
        "ready_timeout_seconds": Field((int,), "How long a new model may take to answer /ping.",
                                       default=120, minimum=1),
        "workers": Field((int,), "Model-server worker processes per endpoint, 1-64 (SageMaker's "
                         "SAGEMAKER_MODEL_SERVER_WORKERS); null: that variable if set, else the CPU count.",
                         default=None, minimum=1, maximum=64),
        "sample_payload": Field((str,), "A request the smoke check after each deploy (and the demo) sends.",
                                default=None),
        "sample_content_type": Field((str,), "Content-Type of the sample payload.", default="text/csv"),
        "traffic": {
            "type": Field((str,), "How an update shifts traffic on SageMaker: all_at_once, canary or linear "
                                  "(locally the swap is always all at once).", default="all_at_once",
                          choices=("all_at_once", "canary", "linear")),
            "percent": Field((int,), "Canary size, or linear step, in percent of capacity.", default=10, minimum=1),
            "wait_seconds": Field((int,), "How long each traffic step is watched before the next.", default=300,
                                  minimum=0),
            "alarms": Field((list,), "CloudWatch alarm names: any in ALARM during the update rolls it back.",
                            default=[]),
        },
    },
    "polling": {
        "heartbeat_seconds": Field((int,), "A long step whose job sends no event for this long checks the job "
                                   "itself (the most a lost event costs).", default=300, minimum=1),
    },
    "skill": {
        "skill_id": Field((str,), "Alexa skill id every request must carry.", default=LOCAL_SKILL_ID),
        "allowed_user_ids": Field((list,), "Alexa user ids that may start and stop builds.",
                                  default=[LOCAL_USER_ID]),
        "others_can_query": Field((bool,), "Whether other users may still ask about builds.", default=True),
    },
    "triggers": {
        "coalesce_seconds": Field(_NUM, "Triggers arriving within this window start one build.", default=2.0,
                                  minimum=0),
        "git": {
            "repo": Field((str,), "A git repository whose branch starts builds (polled by `up`).", default=None),
            "branch": Field((str,), "The branch that starts builds.", default="main"),
            "poll_seconds": Field(_NUM, "How often `up` looks at the branch.", default=2.0, minimum=0.1),
        },
        "data": {
            "paths": Field((list,), "Folders whose new or changed files start a build.", default=[]),
            "settle_seconds": Field(_NUM, "Quiet time after the last change before the build starts.",
                                    default=1.0, minimum=0),
        },
        "schedule": Field((list,), "Cron schedules: [{cron, reason}], in local time.", default=[],
                          items={"cron": Field((str,), "cron expression", required=True),
                                 "reason": Field((str,), "why (recorded on the build)", default="scheduled build")}),
        "launch": {
            "secret_env": Field((str,), "Environment variable holding the POST /launch HMAC secret.",
                                default="SAGEBUILD_LAUNCH_SECRET"),
            "secret": Field((str,), "The secret itself (prefer secret_env).", default=None),
        },
    },
    "notifications": Field((list,), "Where build events go: console, webhook, email (SMTP), alexa.",
                           default=[{"type": "console"}], items={
                               "type": Field((str,), "console, webhook, email or alexa", required=True,
                                             choices=("console", "webhook", "email", "alexa")),
                               "events": Field((list,), "Events to send (default: all).", default=None),
                               "url": Field((str,), "webhook URL", default=None),
                               "secret_env": Field((str,), "env var with the webhook HMAC secret", default=None),
                               "smtp_host": Field((str,), "SMTP server", default=None),
                               "smtp_port": Field((int,), "SMTP port", default=25),
                               "from": Field((str,), "sender address", default=None),
                               "to": Field((list,), "recipient addresses", default=None),
                               "retries": Field((int,), "attempts after the first", default=3, minimum=0),
                               # alexa (Proactive Events); see lambda_pipeline/alexa_events.py
                               "client_id_env": Field((str,), "env var with the skill's Alexa client id",
                                                      default=None),
                               "client_secret_env": Field((str,), "env var with the skill's Alexa client secret",
                                                          default=None),
                               "stage": Field((str,), "skill stage the events go to (default development)",
                                              default=None, choices=("development", "live")),
                               "region": Field((str,), "Alexa API region: NA, EU or FE (default NA)",
                                               default=None, choices=("NA", "EU", "FE")),
                               "audience": Field((str,), "unicast (each allowed user, default) or multicast",
                                                 default=None, choices=("unicast", "multicast")),
                               "api_url": Field((str,), "Proactive Events URL (default: Amazon's by region "
                                                "and stage)", default=None),
                               "token_url": Field((str,), "Login with Amazon token URL (default: Amazon's)",
                                                  default=None),
                           }),
    "builds": {
        "when_running": Field((str,), "A build started while one runs is queued or refused.",
                              default="queue", choices=("queue", "refuse")),
    },
}


def strip_comments(text: str) -> str:
    """Drop full-line ``//`` comments so an annotated config file stays JSON."""
    return "\n".join("" if line.lstrip().startswith("//") else line for line in text.splitlines())


def load_config_text(text: str, source: str = "config") -> dict[str, Any]:
    """Parse and validate a config document; return it with defaults filled in.

    Raises:
        ConfigError: on malformed JSON, unknown keys, wrong types or values, naming each key.
    """
    try:
        raw = json.loads(strip_comments(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    return validate_config(raw, source)


def validate_config(raw: Any, source: str = "config") -> dict[str, Any]:
    """Validate a parsed config and fill defaults. See :func:`load_config_text`."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} must be a JSON object, got {_type_name(raw)}")
    problems: list[str] = []
    result = _validate_section(raw, SCHEMA, "", problems)
    if not problems:
        _check_semantics(result, problems)
    if problems:
        raise ConfigError(f"invalid {source}: " + "; ".join(problems))
    return result


def _validate_section(raw: dict[str, Any], schema: dict[str, Any], prefix: str,
                      problems: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in raw:
        if key not in schema:
            hint = difflib.get_close_matches(key, list(schema), n=1)
            suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
            if f"{prefix}{key}" in _RETIRED:
                suggestion = f" (retired: use {_RETIRED[prefix + key]})"
            problems.append(f"unknown key '{prefix}{key}'{suggestion}")
    for key, spec in schema.items():
        path = f"{prefix}{key}"
        if isinstance(spec, dict):
            value = raw.get(key, {})
            if not isinstance(value, dict):
                problems.append(f"'{path}' must be an object, got {_type_name(value)}")
                continue
            out[key] = _validate_section(value, spec, path + ".", problems)
        elif key in raw:
            out[key] = _validate_value(raw[key], spec, path, problems)
        elif spec.required:
            problems.append(f"missing required key '{path}'")
        else:
            out[key] = copy.deepcopy(spec.default)
    return out


def _validate_value(value: Any, spec: Field, path: str, problems: list[str]) -> Any:
    if value is None and not spec.required:
        return None
    is_bool = isinstance(value, bool)
    if not isinstance(value, spec.types) or (is_bool and bool not in spec.types):
        expected = " or ".join(_TYPE_WORDS[t] for t in spec.types)
        problems.append(f"'{path}' must be {expected}, got {_type_name(value)} {json.dumps(value)[:40]}")
        return value
    checked: Any = value  # of one of spec.types now (isinstance narrowed it to object)
    if spec.choices is not None and checked not in spec.choices:
        problems.append(f"'{path}' must be one of {', '.join(map(str, spec.choices))}, got {value!r}")
    if spec.minimum is not None and checked < spec.minimum:
        problems.append(f"'{path}' must be at least {spec.minimum}, got {value}")
    if spec.maximum is not None and checked > spec.maximum:
        problems.append(f"'{path}' must be at most {spec.maximum}, got {value}")
    if spec.pattern is not None and not spec.pattern.match(checked):
        problems.append(f"'{path}' must be lower-case letters, digits and hyphens (2-42 chars), got {value!r}")
    if spec.items is not None:
        for i, item in enumerate(checked):
            if not isinstance(item, dict):
                problems.append(f"'{path}[{i}]' must be an object, got {_type_name(item)}")
                continue
            _validate_section(item, spec.items, f"{path}[{i}].", problems)
    return value


def _check_semantics(cfg: dict[str, Any], problems: list[str]) -> None:
    try:
        resolve_framework(cfg["training"]["framework"], cfg["training"]["framework_version"])
    except ConfigError as exc:
        problems.append(str(exc))
    for name, value in cfg["training"]["hyperparameters"].items():
        if not isinstance(value, (str, int, float, bool)):
            problems.append(f"'training.hyperparameters.{name}' must be a string, number or boolean")
    for name, value in cfg["training"]["channels"].items():
        if not re.match(r"^[A-Za-z0-9_-]+$", name):
            problems.append(f"'training.channels.{name}': channel names are letters, digits, _ and -")
        if not isinstance(value, str):
            problems.append(f"'training.channels.{name}' must be a folder path string")
    for i, md in enumerate(cfg["training"]["metric_definitions"]):
        try:
            if re.compile(md["Regex"]).groups < 1:
                problems.append(f"'training.metric_definitions[{i}].Regex' needs a capture group for the value")
        except re.error as exc:
            problems.append(f"'training.metric_definitions[{i}].Regex' is not a valid regex: {exc}")
    gate = cfg["gate"]
    if (gate["metric"] is None) != (gate["minimum"] is None):
        problems.append("'gate.metric' and 'gate.minimum' go together: set both or neither")
    names = {md["Name"] for md in cfg["training"]["metric_definitions"]}
    if gate["must_beat_live"] and gate["metric"] is None:
        problems.append("'gate.must_beat_live' needs 'gate.metric' and 'gate.minimum'")
    if gate["metric"] is not None and gate["metric"] not in names:
        problems.append(f"'gate.metric' {gate['metric']!r} is not defined in 'training.metric_definitions'")
    if not all(isinstance(u, str) for u in cfg["skill"]["allowed_user_ids"]):
        problems.append("'skill.allowed_user_ids' must be a list of Alexa user id strings")
    for i, sink in enumerate(cfg["notifications"]):
        need = {"webhook": ("url",), "email": ("smtp_host", "from", "to"),
                "alexa": ("client_id_env", "client_secret_env")}.get(sink.get("type"), ())
        for key in need:
            if not sink.get(key):
                problems.append(f"'notifications[{i}].{key}' is required for {_an(sink['type'])} sink")
        _check_alexa_keys(i, sink, problems)
        unknown = set(sink.get("events") or []) - set(EVENTS)
        if unknown:
            problems.append(f"'notifications[{i}].events' has unknown events {sorted(unknown)}; "
                            f"known: {', '.join(EVENTS)}")
    for i, entry in enumerate(cfg["triggers"]["schedule"]):
        try:
            from croniter import croniter
            if not croniter.is_valid(entry["cron"]):
                raise ValueError(entry["cron"])
        except (ValueError, KeyError):
            problems.append(f"'triggers.schedule[{i}].cron' is not a valid cron expression: {entry.get('cron')!r}")
    traffic = cfg["deploy"]["traffic"]
    if traffic["percent"] > 100:
        problems.append(f"'deploy.traffic.percent' is a share of capacity: at most 100, got {traffic['percent']}")
    if not all(isinstance(a, str) and a for a in traffic["alarms"]):
        problems.append("'deploy.traffic.alarms' must be a list of CloudWatch alarm names")
    if cfg["polling"]["heartbeat_seconds"] > MAX_HEARTBEAT_SECONDS:
        problems.append(f"'polling.heartbeat_seconds' is the most a lost event may cost: at most "
                        f"{MAX_HEARTBEAT_SECONDS} (a day), got {cfg['polling']['heartbeat_seconds']}")
    if cfg["deploy"]["endpoint"] is None:
        cfg["deploy"]["endpoint"] = cfg["pipeline"]


_ALEXA_KEYS = ("client_id_env", "client_secret_env", "stage", "region", "audience", "api_url", "token_url")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _an(kind: str) -> str:
    return f"an {kind}" if kind[:1] in "aeiou" else f"a {kind}"


def _check_alexa_keys(i: int, sink: dict[str, Any], problems: list[str]) -> None:
    """Alexa-only keys belong on alexa sinks, theirs on the others; URLs and env names are well formed."""
    is_alexa = sink.get("type") == "alexa"
    for key in (_ALEXA_KEYS if not is_alexa else ("url", "secret_env", "smtp_host", "from", "to")):
        if sink.get(key) is not None:
            problems.append(f"'notifications[{i}].{key}' does not apply to {_an(str(sink.get('type')))} sink")
    if not is_alexa:
        return
    for key in ("client_id_env", "client_secret_env"):
        if sink.get(key) and not _ENV_RE.match(sink[key]):
            problems.append(f"'notifications[{i}].{key}' must name an environment variable, got {sink[key]!r}")
    for key in ("api_url", "token_url"):
        if sink.get(key) and not re.match(r"^https?://[^/\s]+", sink[key]):
            problems.append(f"'notifications[{i}].{key}' must be an http(s) URL, got {sink[key]!r}")


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               dict: "an object", list: "a list"}


def _type_name(value: Any) -> str:
    return {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object",
            list: "list", type(None): "null"}.get(type(value), type(value).__name__)
