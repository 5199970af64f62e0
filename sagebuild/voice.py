"""``sagebuild say`` and ``sagebuild skill serve``: the skill from a terminal, and over HTTP."""
from __future__ import annotations

import argparse
import json
import re
import time
from typing import Any

from lambda_pipeline.adapters.local.config_store import FileConfigStore
from lambda_pipeline.config import LOCAL_USER_ID
from lambda_pipeline.errors import ConfigError, EngineNotRunning
from infrastructure.local.registry import registry_home

from . import signals
from .context import Context

__all__ = ["cmd_say", "cmd_skill_serve", "add_voice_commands", "spoken_text"]

_SESSION_FILE = "say-session.json"
_SESSION_SECONDS = 300  # like a device: an open conversation lapses after a while


def spoken_text(response: dict[str, Any]) -> str:
    """The words of a response, without SSML tags."""
    speech = (response.get("response") or {}).get("outputSpeech") or {}
    text = speech.get("ssml") or speech.get("text") or ""
    text = re.sub(r"<[^>]+>", "", text)
    return text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').strip()


def _settings(ctx: Context) -> Any:
    from skill.settings import SkillSettings
    try:
        return SkillSettings.from_config(FileConfigStore(str(ctx.project)).load())
    except ConfigError:
        if (ctx.project / "sagebuild.json").exists():
            raise
        return SkillSettings()


def cmd_say(ctx: Context, args: argparse.Namespace) -> int:
    from skill.app import SkillApp
    from skill.envelopes import intent_request, launch_request
    from skill.nlu import Resolver

    directory = _directory(ctx)
    resolver = Resolver(args.locale, pipelines=directory.names() if directory is not None else None)
    explain = bool(getattr(args, "explain", False)) and bool(args.utterance.strip())
    if explain and not args.json:
        from skill.nlu import explain_lines
        for line in explain_lines(resolver, args.utterance):
            ctx.ui.say(line)
    settings = _settings(ctx)
    session_file = (ctx.project / ".sagebuild" if directory is None else registry_home()) / _SESSION_FILE
    session = _load_session(session_file, args.locale) if not args.new_session else None
    user = args.user or LOCAL_USER_ID
    if not args.utterance.strip():
        intent, slots = "LaunchRequest", {}
        envelope = launch_request(args.locale, skill_id=settings.skill_id, user_id=user)
    else:
        resolution = resolver.resolve(args.utterance)
        intent, slots = resolution.intent, resolution.slots
        asking: dict[str, Any] = ((session or {}).get("attributes") or {}).get("asking") or {}
        named = resolver.pipeline_in(args.utterance) if asking and "Pipeline" not in slots else None
        if named is not None:  # the answer to "which pipeline?": the action asked before, for it
            intent, slots = asking["intent"], {**asking.get("slots", {}), "Pipeline": named}
        envelope = intent_request(intent, slots, args.locale, skill_id=settings.skill_id, user_id=user,
                                  new_session=session is None, attributes=(session or {}).get("attributes"),
                                  session_id=(session or {}).get("session_id"))
    target = directory if directory is not None else ctx.builds()
    response = SkillApp(target, settings, _memory(ctx) if directory is None else None).handle(envelope)
    end = (response.get("response") or {}).get("shouldEndSession", True) is not False
    if end:
        session_file.unlink(missing_ok=True)
    else:
        session_file.parent.mkdir(parents=True, exist_ok=True)
        session_file.write_text(json.dumps({"session_id": envelope["session"]["sessionId"], "locale": args.locale,
                                            "attributes": response.get("sessionAttributes") or {},
                                            "at": time.time()}))
    speech = spoken_text(response)
    if args.json:
        out: dict[str, Any] = {"intent": intent, "slots": slots, "speech": speech, "end_session": end}
        if explain:
            out["explain"] = [{"intent": c.intent, "score": c.score, "sample": c.sample}
                              for c in resolver.explain(args.utterance)]
        ctx.ui.say(json.dumps(out, ensure_ascii=False))
    else:
        slot_text = " ".join(f"{k}={v['value'] if isinstance(v, dict) else v}" for k, v in slots.items())
        ctx.ui.say(f"[{intent}{' ' + slot_text if slot_text else ''}]")
        ctx.ui.say(f"Alexa: {speech}")
        if not end:
            ctx.ui.say("(the session is open: answer with another `sagebuild say`)")
    return 0


def _directory(ctx: Context) -> Any:
    """Outside a project: every pipeline running for this user (the registry); None in a project."""
    if (ctx.project / "sagebuild.json").exists():
        return None
    from lambda_pipeline.adapters.local.registry_pipelines import RegistryPipelines
    return RegistryPipelines()


def _memory(ctx: Context) -> Any:
    """The skill's per-user memory (opt-ins, what each user heard): the running engine's, if any."""
    running = ctx.running()
    return running.state() if running is not None else None


def _load_session(path: Any, locale: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if data.get("locale") != locale or time.time() - float(data.get("at", 0)) > _SESSION_SECONDS:
        return None
    return data


def cmd_skill_serve(ctx: Context, args: argparse.Namespace) -> int:
    from skill.app import SkillApp
    from skill.verification import AlexaRequestVerifier
    from skill.webapp import SkillServer

    directory = _directory(ctx)
    running = ctx.running() if directory is None else None
    if directory is None and running is None:
        raise EngineNotRunning(f"the engine is not running for {ctx.project}: start it with `sagebuild up` first")
    if directory is not None and not directory.names():
        raise EngineNotRunning("no pipeline is running for you: start one with `sagebuild up` in its folder")
    settings = _settings(ctx)
    verifier = None if args.no_verify else AlexaRequestVerifier()
    app = SkillApp(directory, settings) if running is None else SkillApp(running, settings, running.state())
    server = SkillServer(app, verifier, port=args.port)
    stop = signals.stop_on_signals()
    server.start()
    answers_for = settings.pipeline or ctx.project.name if directory is None else ", ".join(directory.names())
    ctx.ui.say(f"Alexa skill for {answers_for} on {server.url}")
    ctx.ui.say(f"  skill id   {settings.skill_id}")
    ctx.ui.say("  requests   " + ("verified as Alexa requires (signature, certificate, timestamp)" if verifier
                                   else "NOT verified (--no-verify: local testing only)"))
    ctx.ui.say("Ctrl-C stops it.")
    try:
        signals.wait(stop)
    finally:
        server.stop()
    return 0


def add_voice_commands(sub: Any) -> None:
    p = sub.add_parser("say", help="say something to the skill, as on a device, and hear the answer")
    p.add_argument("utterance", help='e.g. "is my build done" (empty: open the skill)')
    p.add_argument("--locale", default="en-US", choices=("en-US", "fr-FR", "ja-JP"))
    p.add_argument("--json", action="store_true", help='one object: {"intent", "slots", "speech", "end_session"}')
    p.add_argument("--user", help="Alexa user id to speak as (default: the local user)")
    p.add_argument("--new-session", action="store_true", help="ignore an open conversation")
    p.add_argument("--explain", action="store_true",
                   help="first print the three best intents with their scores (like Alexa's utterance profiler)")
    p.set_defaults(func=cmd_say)

    skill = sub.add_parser("skill", help="the Alexa skill")
    skill_sub = skill.add_subparsers(dest="skill_command", required=True, metavar="SUBCOMMAND")
    p = skill_sub.add_parser("serve", help="serve the skill over HTTP on 127.0.0.1 against the local engine")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    p.add_argument("--no-verify", action="store_true",
                   help="skip Alexa request verification (local testing only; the skill id is still checked)")
    p.set_defaults(func=cmd_skill_serve)
