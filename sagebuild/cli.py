"""The ``sagebuild`` command line.

Errors print as one line on stderr with a meaningful exit code: 0 success, 1 a failed build
or an unreachable engine, 2 bad usage, bad config or not found, 130 interrupted, 141 a closed
output pipe (quietly). ``--debug``
shows the traceback.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from lambda_pipeline.adapters.local.config_store import CONFIG_FILE
from lambda_pipeline.errors import ConfigError, EngineNotRunning, InvocationError, NotFound, SageBuildError
from lambda_pipeline.model import BuildStatus

from . import present, signals
from .context import UI, Context, engine_url
from .demo import run_demo
from .invocation import invoke_endpoint
from .notify_test import add_notify_test_command
from .pipelines_cmd import add_pipelines_command, project_of
from .project import copy_example, write_scaffold
from .voice import add_voice_commands
from .watch import watch

__all__ = ["main", "UI", "Context", "engine_url", "watch"]



# -- commands -------------------------------------------------------------------------------
def cmd_init(ctx: Context, args: argparse.Namespace) -> int:
    target = Path(args.dir or ctx.project).resolve()
    if args.git:
        from infrastructure.local.triggers.git_watch import install_hook
        if not (target / CONFIG_FILE).exists():
            raise ConfigError(f"no {CONFIG_FILE} in {target}: run `sagebuild init` there first")
        hook = install_hook(args.git, [sys.executable, "-m", "sagebuild.cli", "--project", str(target), "trigger",
                                       "git", "--repo", str(Path(args.git).resolve())])
        ctx.ui.say(f"Installed {hook}: each commit on the configured branch (triggers.git.branch) starts a build "
                   "while `sagebuild up` runs.")
        return 0
    if args.example:
        copy_example(args.example, target, args.force)
        ctx.ui.say(f"Created the {args.example} example in {target} (code in model/, data in data/).")
    else:
        config = write_scaffold(target, args.force)
        ctx.ui.say(f"Wrote {config}. Put your SageMaker script-mode train.py in {target / 'model'} and "
                   "your data in data/train and data/validation.")
    ctx.ui.say("Next: `sagebuild up` in that folder, then `sagebuild start --reason \"first model\" --wait`.")
    return 0


def cmd_trigger(ctx: Context, args: argparse.Namespace) -> int:
    """What the git hook runs: tell the engine about the commit at HEAD, if it is on the branch."""
    from infrastructure.local.triggers.git_watch import commit_trigger, head_commit
    from lambda_pipeline.adapters.local.config_store import FileConfigStore

    branch = FileConfigStore(str(ctx.project)).load()["triggers"]["git"]["branch"]
    commit = head_commit(str(Path(args.repo).resolve()))
    if commit is None:
        raise NotFound(f"{args.repo} is not a git repository with commits")
    if commit["branch"] != branch:
        ctx.ui.say(f"commit on {commit['branch']}, not {branch}: no build")
        return 0
    reason, details = commit_trigger(commit)
    running = ctx.running()
    if running is None:
        raise EngineNotRunning(f"the engine is not running for {ctx.project}; this commit starts no build "
                               "(`up` will see it if triggers.git.repo is set)")
    running.submit_trigger("git", reason, details)
    ctx.ui.say(f"build requested: {reason}")
    return 0


def cmd_up(ctx: Context, args: argparse.Namespace) -> int:
    from infrastructure.local.service import LocalService

    if not (ctx.project / CONFIG_FILE).exists():
        raise ConfigError(f"no {CONFIG_FILE} in {ctx.project}: run `sagebuild init` first (or pass --project)")
    stop = signals.stop_on_signals()
    service = LocalService(str(ctx.project), api_port=args.port, notify=ctx.ui.say)
    try:
        info = service.start()
        ctx.ui.say(f"SageBuild engine for {ctx.project}")
        ctx.ui.say(f"  API      {info['url']}  (pid {info['pid']})")
        for job in info["jobs"]["adopted"]:
            ctx.ui.say(f"  training job {job} kept running while the engine was down; its build goes on with it")
        for job in info["jobs"]["ended"]:
            ctx.ui.say(f"  training job {job} ended while the engine was down; its result is used")
        for job in info["jobs"]["lost"]:
            ctx.ui.say(f"  training job {job} was cut off when the engine stopped; it will run again")
        for number, step in info["resumed"]:
            ctx.ui.say(f"  build #{number} was running when the engine stopped; it continues from {step}, "
                       "keeping the steps it finished")
        for name in info["endpoints"]:
            ctx.ui.say(f"  endpoint {name} is being restored")
        ctx.ui.say("Ready. Ctrl-C stops the engine, its builds and its endpoints.")
        signals.wait(stop)
        ctx.ui.say("Stopping…")
    finally:
        service.close()
    ctx.ui.say("Stopped.")
    return 0


def _parse_hps(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--hp takes NAME=VALUE, got {item!r}")
        name, value = item.split("=", 1)
        try:
            out[name.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[name.strip()] = value
    return out


def cmd_start(ctx: Context, args: argparse.Namespace) -> int:
    builds = ctx.builds(need_engine=True)
    build = builds.start(args.reason, source="cli", hyperparameters=_parse_hps(args.hp))
    queued = " (queued: another build is running)" if build.status == BuildStatus.QUEUED else ""
    ctx.ui.say(f"Started build #{build.number} ({build.id}){queued}.")
    if not args.wait:
        ctx.ui.say(f"Follow it with `sagebuild status {build.number}` or `sagebuild logs {build.number} --follow`.")
        return 0
    final = watch(builds, build.id, ctx.ui, poll=5.0 if ctx.stack else 0.2, environment=not ctx.stack)
    return 0 if final.status == BuildStatus.SUCCEEDED else 1


def cmd_stop(ctx: Context, args: argparse.Namespace) -> int:
    build = ctx.builds(need_engine=True).stop(args.build)
    ctx.ui.say(f"Stopped build #{build.number}: {build.status}. The live endpoint is unchanged.")
    return 0


def cmd_retry(ctx: Context, args: argparse.Namespace) -> int:
    builds = ctx.builds(need_engine=True)
    build = builds.retry(args.build)
    ctx.ui.say(f"Retrying build #{build.number} from {build.current_step} ({present.attempt_words(build.attempt)}); "
               "the steps it finished keep their results.")
    if not args.wait:
        ctx.ui.say(f"Follow it with `sagebuild status {build.number}` or `sagebuild logs {build.number} --follow`.")
        return 0
    final = watch(builds, build.id, ctx.ui, poll=5.0 if ctx.stack else 0.2)
    return 0 if final.status == BuildStatus.SUCCEEDED else 1


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    build = ctx.builds().get(args.build)
    if args.json:
        ctx.ui.say(json.dumps(present.as_json(build, with_config=True), indent=2, default=str))
    else:
        ctx.ui.say(present.build_details(build))
    return 0


def cmd_list(ctx: Context, args: argparse.Namespace) -> int:
    builds = ctx.builds().list(args.limit)
    if args.json:
        ctx.ui.say(json.dumps({"builds": [present.as_json(b) for b in builds]}, indent=2, default=str))
        return 0
    if not builds:
        ctx.ui.say("No builds yet: `sagebuild start --reason \"first model\"` starts one.")
    now = time.time()
    for build in builds:
        ctx.ui.say(present.build_row(build, now))
    return 0


def cmd_logs(ctx: Context, args: argparse.Namespace) -> int:
    builds = ctx.builds()
    offset = 0
    while True:
        chunk = builds.logs(args.build, offset)
        if chunk.text:
            ctx.ui.out.write(chunk.text)
            ctx.ui.out.flush()
        offset = chunk.next_offset
        if not args.follow or chunk.complete:
            break
        if not chunk.text:
            time.sleep(0.3)
    build = builds.get(args.build)
    if not build.training_job:
        ctx.ui.warn(f"build #{build.number} has no training log yet ({build.status.lower()})")
    return 0


def cmd_endpoints(ctx: Context, args: argparse.Namespace) -> int:
    endpoints = ctx.builds(need_engine=True).endpoints()
    if args.json:
        ctx.ui.say(json.dumps({"endpoints": [e.to_dict() for e in endpoints]}, indent=2))
        return 0
    if not endpoints:
        ctx.ui.say("No endpoints yet: a successful build creates one.")
    for e in endpoints:
        ctx.ui.say(f"{e.name:<24} {e.status:<10} {e.model_version or '-':<6} {e.url or '-':<26} "
                   f"live since {present.ago(e.updated_at)}" + (f"  ({e.failure_reason})" if e.failure_reason else ""))
    return 0


def cmd_invoke(ctx: Context, args: argparse.Namespace) -> int:
    endpoints = {e.name: e for e in ctx.builds(need_engine=True).endpoints()}
    if args.endpoint not in endpoints:
        known = ", ".join(sorted(endpoints)) or "none yet"
        raise NotFound(f"no endpoint {args.endpoint!r} (endpoints: {known})")
    endpoint = endpoints[args.endpoint]
    if endpoint.status not in ("InService", "Updating"):
        raise InvocationError(f"endpoint {args.endpoint} is {endpoint.status}, not InService")
    if args.file:
        try:
            body = Path(args.file).read_bytes()
        except OSError as exc:
            raise NotFound(f"cannot read {args.file}: {exc.strerror}") from None
    else:
        body = args.data.encode()
    stripped = body.lstrip()
    content_type = args.content_type or ("application/json" if stripped[:1] in (b"[", b"{") else "text/csv")
    answer = invoke_endpoint(ctx.builds(need_engine=True), args.endpoint, body, content_type, args.accept)
    ctx.ui.say(answer.decode(errors="replace").rstrip())
    return 0


def cmd_rollback(ctx: Context, args: argparse.Namespace) -> int:
    builds = ctx.builds(need_engine=True)
    plan = builds.plan_rollback(args.version)
    ctx.ui.say(f"Rolling {plan['endpoint']} back from {plan['from']} to {plan['to']} (stored artifact, no retraining)…")
    info = builds.rollback(plan["to"])
    if info.status == "Updating":  # on AWS the endpoint switches over minutes
        ctx.ui.say(f"The endpoint is switching to {info.model_version}; it takes a few minutes and a notification "
                   f"says when it serves. `sagebuild --stack {ctx.stack} live` shows what serves now.")
        return 0
    ctx.ui.say(f"{info.model_version} is live again on {info.name} ({info.url}); {plan['from']} no longer serves.")
    return 0


def cmd_models(ctx: Context, args: argparse.Namespace) -> int:
    models = ctx.builds().models(args.limit)
    if args.json:
        ctx.ui.say(json.dumps({"models": models}, indent=2, default=str))
        return 0
    if not models:
        ctx.ui.say("No versions yet: a build that passes its gate registers one.")
    for model in models:
        metrics = "  ".join(f"{k}={v:.4g}" for k, v in sorted(model["metrics"].items()))
        ctx.ui.say(f"{model['version']:<6} registered {present.ago(model['created_at'])}  {metrics}")
        for d in reversed(model["deployments"]):
            until = "now" if d["replaced_at"] is None else present.ago(d["replaced_at"])
            note = f"  [rolled back: {d['rolled_back_reason']}]" if d["rolled_back_reason"] else ""
            ctx.ui.say(f"       served {present.ago(d['deployed_at'])} until {until} ({d['kind']}){note}")
    return 0


def _parse_time(text: str) -> float:
    import datetime as dt
    try:
        return float(text)
    except ValueError:
        pass
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"--at takes ISO 8601 (2026-11-22T05:00:00) or epoch seconds, got {text!r}") from None
    if when.tzinfo is None:
        when = when.astimezone()  # a time without a zone is local time
    return when.timestamp()


def cmd_live(ctx: Context, args: argparse.Namespace) -> int:
    builds = ctx.builds()
    when = _parse_time(args.at) if args.at else time.time()
    deployment = builds.live_at(when)
    if args.json:
        ctx.ui.say(json.dumps({"at": when, "deployment": deployment}, indent=2))
        return 0
    if deployment is None:
        ctx.ui.say("Nothing was live then." if args.at else "Nothing is live.")
        return 0
    since = present.ago(deployment["deployed_at"])
    ctx.ui.say(f"{deployment['version']} {'was' if args.at else 'is'} live on {deployment['endpoint']} "
               f"(deployed {since}, {deployment['kind']}, endpoint config {deployment['endpoint_config']})")
    return 0


def cmd_aws_render(ctx: Context, args: argparse.Namespace) -> int:
    from infrastructure.aws import render_all
    for path in render_all(Path(args.out)):
        ctx.ui.say(f"wrote {path}")
    ctx.ui.say("Check them with `cfn-lint`; `sagebuild aws deploy --stack NAME` deploys one.")
    return 0


def _stack_tool(ctx: Context, args: argparse.Namespace) -> Any:
    import boto3

    from infrastructure.aws.stacks import StackTool
    session = boto3.session.Session(profile_name=args.profile, region_name=args.region or args.stack_region)
    return StackTool(session, say=ctx.ui.say)


def cmd_aws_deploy(ctx: Context, args: argparse.Namespace) -> int:
    from infrastructure.aws.stacks import aws_errors, parse_params
    with aws_errors():
        tool = _stack_tool(ctx, args)
        outputs = tool.deploy(args.stack, parse_params(args.param or []), variant=args.variant,
                              template=Path(args.template) if args.template else None,
                              project=None if args.no_code else ctx.project,
                              write_config=not args.keep_config, upload_data=args.upload_data,
                              framework_from=ctx.project)
    ctx.ui.say(f"stack {args.stack} in {tool.region}:")
    for key, value in sorted(outputs.items()):
        ctx.ui.say(f"  {key:<22} {value}")
    return 0


def cmd_aws_destroy(ctx: Context, args: argparse.Namespace) -> int:
    if not args.yes and not ctx.ui.confirm(f"Delete stack {args.stack}, its buckets' contents and its endpoint?"):
        ctx.ui.say("nothing deleted")
        return 1
    from infrastructure.aws.stacks import aws_errors
    with aws_errors():
        _stack_tool(ctx, args).destroy(args.stack)
    return 0


def cmd_aws_skill_package(ctx: Context, args: argparse.Namespace) -> int:
    from infrastructure.aws.stacks import aws_errors
    with aws_errors():
        out = _stack_tool(ctx, args).skill_package(args.stack, Path(args.out))
    ctx.ui.say(f"wrote the skill package to {out}; deploy it with `ask deploy` there")
    return 0


def cmd_timeline(ctx: Context, args: argparse.Namespace) -> int:
    build = ctx.builds().get(args.build)
    ctx.ui.say(f"Build #{build.number} {build.status}")
    ctx.ui.say(present.timeline(build.steps))
    return 0


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    return run_demo(Path(args.dir).resolve(), ctx.ui)


# -- parser ---------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagebuild", description="Continuous delivery for ML models, locally "
                                     "or on AWS. Run commands inside a project folder (or pass --project).")
    parser.add_argument("--project", default=os.environ.get("SAGEBUILD_PROJECT", "."),
                        help="project folder holding sagebuild.json (default: current folder)")
    parser.add_argument("--stack", default=os.environ.get("SAGEBUILD_STACK") or None,
                        help="work with a deployed AWS stack instead of the local engine (start, stop, status, "
                             "list, logs, endpoints, invoke, rollback, models, live, timeline)")
    parser.add_argument("--region", dest="stack_region", default=None,
                        help="the stack's AWS region (default: your AWS configuration's)")
    parser.add_argument("--pipeline", default=None, metavar="NAME",
                        help="work with the running pipeline NAME from any folder (see `sagebuild pipelines`)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_pipelines_command(sub)

    p = sub.add_parser("init", help="scaffold a project config (with comments), or copy an example")
    p.add_argument("dir", nargs="?", help="folder to initialise (default: the project folder)")
    p.add_argument("--example", help="copy a sample project: 'wine' (scikit-learn) or 'xgboost'")
    p.add_argument("--force", action="store_true", help="overwrite an existing sagebuild.json")
    p.add_argument("--git", metavar="REPO", help="install a post-commit hook in REPO that starts builds")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("trigger", help="tell the engine about an event (used by the git hook)")
    trigger_sub = p.add_subparsers(dest="trigger_kind", required=True, metavar="KIND")
    t = trigger_sub.add_parser("git", help="the commit at HEAD of a repository")
    t.add_argument("--repo", default=".", help="the repository (default: the current folder)")
    t.set_defaults(func=cmd_trigger)

    p = sub.add_parser("up", help="run the engine, its API and the endpoints in the foreground")
    p.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (default: a free one)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("start", help="start a build")
    p.add_argument("--reason", default="started from the CLI", help="why (recorded in the ledger)")
    p.add_argument("--hp", action="append", metavar="NAME=VALUE", help="override a hyperparameter (repeatable)")
    p.add_argument("--wait", action="store_true", help="show progress until the build ends")
    p.set_defaults(func=cmd_start)

    p = sub.add_parser("stop", help="stop a build (default: the running one); the live model stays")
    p.add_argument("build", nargs="?", help="build number or id")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("retry", help="run a failed, interrupted or stopped build again from the step where it "
                                      "stopped (default: the latest)")
    p.add_argument("build", nargs="?", help="build number or id")
    p.add_argument("--wait", action="store_true", help="show progress until the build ends")
    p.set_defaults(func=cmd_retry)

    p = sub.add_parser("status", help="show a build (default: the latest)")
    p.add_argument("build", nargs="?", help="build number or id")
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("list", help="list recent builds, newest first")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true", help="one JSON document on stdout")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("logs", help="print a build's training log")
    p.add_argument("build", nargs="?", help="build number or id (default: the latest)")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until the job ends")
    p.set_defaults(func=cmd_logs)

    p = sub.add_parser("endpoints", help="list endpoints and what they serve")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_endpoints)

    p = sub.add_parser("invoke", help="call a live endpoint")
    p.add_argument("endpoint")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--data", help="the request body: a CSV row or JSON")
    group.add_argument("--file", help="read the request body from a file")
    p.add_argument("--content-type", help="default: application/json for JSON bodies, else text/csv")
    p.add_argument("--accept", default="application/json")
    p.set_defaults(func=cmd_invoke)

    p = sub.add_parser("rollback", help="serve an earlier version again (default: the previous good one)")
    p.add_argument("version", nargs="?", help="e.g. v3 (or 3)")
    p.set_defaults(func=cmd_rollback)

    p = sub.add_parser("models", help="registered versions, their metrics and when each served")
    p.add_argument("--limit", type=int, default=20)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("live", help="what is live now, or was live at a time")
    p.add_argument("--at", help="ISO 8601 time (local if no zone) or epoch seconds")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_live)

    p = sub.add_parser("timeline", help="show a build's steps on a time axis")
    p.add_argument("build", nargs="?")
    p.set_defaults(func=cmd_timeline)

    p = sub.add_parser("aws", help="SageBuild on AWS (CloudFormation)")
    aws_sub = p.add_subparsers(dest="aws_command", required=True, metavar="SUBCOMMAND")
    r = aws_sub.add_parser("render", help="write the CloudFormation template of every variant")
    r.add_argument("--out", required=True, help="folder for <variant>.yaml")
    r.set_defaults(func=cmd_aws_render)

    def aws_command(name: str, help_text: str, func: Callable[[Context, argparse.Namespace], int]) -> Any:
        c = aws_sub.add_parser(name, help=help_text)
        c.add_argument("--stack", required=True, help="the stack's name, e.g. sagebuild-prod")
        c.add_argument("--region", help="default: your AWS configuration's region")
        c.add_argument("--profile", help="an AWS CLI profile")
        c.set_defaults(func=func)
        return c

    d = aws_command("deploy", "create or update a stack (change set), then upload the project's code", cmd_aws_deploy)
    d.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a template parameter, e.g. UseSpotTraining=true (repeat for more)")
    d.add_argument("--variant", default="default", choices=["default", "image-build", "notebook"])
    d.add_argument("--template", help="deploy this template file instead of rendering one")
    d.add_argument("--no-code", action="store_true", help="upload nothing of the project (config, code, data)")
    d.add_argument("--keep-config", action="store_true",
                   help="leave the stack's SSM config as it is (default: write the project's, adapted to AWS)")
    d.add_argument("--upload-data", action="store_true",
                   help="also upload each training channel's folder to the data bucket (this starts a build)")
    x = aws_command("destroy", "empty the stack's buckets, delete its endpoint, then the stack", cmd_aws_destroy)
    x.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    k = aws_command("skill-package", "write an ASK CLI skill package pointing at the stack's skill function",
                    cmd_aws_skill_package)
    k.add_argument("--out", default="skill-package-aws", help="folder to write (default: ./skill-package-aws)")

    add_voice_commands(sub)
    add_notify_test_command(sub)

    p = sub.add_parser("demo", help="build, deploy and call the sample model end to end")
    p.add_argument("--dir", default="sagebuild-demo", help="where the demo project lives (default: ./sagebuild-demo)")
    p.set_defaults(func=cmd_demo)
    return parser


SIGPIPE_EXIT = 141  # 128 + SIGPIPE, what a shell tool killed by a closed pipe exits with


def main(argv: list[str] | None = None, ui: UI | None = None) -> int:
    """Run one command. A reader that closes the pipe early (``sagebuild list | head -1``) ends it
    quietly with 141, as for shell tools, instead of a traceback."""
    try:
        try:
            return _run(argv, ui)
        finally:
            if ui is None:
                sys.stdout.flush()  # inside the try: a closed pipe raises here, not at interpreter exit
    except BrokenPipeError:
        if ui is None:
            _drop_stdout()
        return SIGPIPE_EXIT


def _drop_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _run(argv: list[str] | None, ui: UI | None) -> int:
    ui = ui or UI()
    parser = build_parser()
    args = parser.parse_args(argv)
    import logging
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        project = project_of(args.pipeline) if args.pipeline else Path(args.project).resolve()
        ctx = Context(project, ui, args.debug, stack=args.stack, region=getattr(args, "stack_region", None))
        code: int = args.func(ctx, args)
        return code
    except SageBuildError as exc:
        if args.debug:
            raise
        ui.warn(f"sagebuild: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        ui.warn("sagebuild: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
