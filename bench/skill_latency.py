"""Skill latency: warm p50/p99 per intent, and cold start against a minimal ask-sdk-core skill.

Warm: the skill in process against the local engine's Builds port (in process too), with a
ledger holding 1,000 builds; each intent answered --warm times after a warm-up.
Cold: a new Python process, from start to its first response, for SageBuild's skill (reading
the same ledger) and for a minimal ask-sdk-core skill with one handler, measured alternately
in the same run, --cold times each; medians. The last line is one JSON object.
Many pipelines: --pipelines N (default 10) ledgers of --builds builds each behind one skill (the
Pipelines port over their Builds ports, in process); questions with no pipeline named answer across
all N, one named answers for it alone. On AWS the same answer costs one SSM GetParametersByPath
(cached 10 s per container) plus, per pipeline asked about, the ledger reads of Builds.list(5)
(counted in moto by tests/functional/test_aws_builds.py: 11 calls for "is my build done" across a
dev and a prod stack, all DynamoDB; 14 for one named stack, with SageMaker for what is live).
Targets: warm p99 <= 10 ms (one pipeline and ten); cold start <= 1.5x the minimal skill.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MINIMAL_SKILL = r'''
import json, sys
from ask_sdk_core.skill_builder import SkillBuilder
from ask_sdk_core.dispatch_components import AbstractRequestHandler
from ask_sdk_core.utils import is_intent_name
from ask_sdk_core.serialize import DefaultSerializer
from ask_sdk_model import RequestEnvelope

class Hello(AbstractRequestHandler):
    def can_handle(self, handler_input):
        return is_intent_name("BuildStatusIntent")(handler_input)
    def handle(self, handler_input):
        return handler_input.response_builder.speak("Your build is done.").response

sb = SkillBuilder()
sb.add_request_handler(Hello())
skill = sb.create()
serializer = DefaultSerializer()
envelope = serializer.deserialize(sys.stdin.read(), RequestEnvelope)
print(json.dumps(serializer.serialize(skill.invoke(envelope, None))))
'''

SAGEBUILD_SKILL = r'''
import json, sys
from skill.app import SkillApp
from skill.settings import SkillSettings
from lambda_pipeline.adapters.local.ledger_builds import LedgerBuilds
ledger, jobs = sys.argv[1], sys.argv[2]
app = SkillApp(LedgerBuilds(ledger, jobs), SkillSettings())
print(json.dumps(app.handle(json.loads(sys.stdin.read()))))
'''

INTENTS = {
    "BuildStatusIntent": {}, "BuildStatusIntent(number)": {"BuildNumber": "500"}, "BuildDetailsIntent": {},
    "LiveModelIntent": {}, "ListBuildsIntent": {}, "StartBuildIntent": {}, "StopBuildIntent": {},
    "AMAZON.HelpIntent": {}, "AMAZON.FallbackIntent": {},
}


MANY_INTENTS = {
    "BuildStatusIntent(across)": ("BuildStatusIntent", {}), "LiveModelIntent(across)": ("LiveModelIntent", {}),
    "ListBuildsIntent(across)": ("ListBuildsIntent", {}),
    "BuildStatusIntent(named)": ("BuildStatusIntent", {"Pipeline": "model 7"}),
    "StartBuildIntent(which?)": ("StartBuildIntent", {}),
}


def fill_ledger(ledger, count: int, pipeline: str = "wine-classifier") -> None:
    """1,000 builds of every status, with steps and metrics, like a busy pipeline's history."""
    rng = random.Random(7)
    statuses = ["SUCCEEDED"] * 6 + ["FAILED", "GATE_FAILED", "ABORTED", "INTERRUPTED"]
    for i in range(count - 1):
        build = ledger.create_build(pipeline, rng.choice(["cli", "voice", "api"]), f"bench build {i}")
        ledger.update_build(build.id, status="RUNNING", version=f"v{build.number}", started_at=time.time() - 3600,
                            metrics={"validation:accuracy": round(rng.uniform(0.8, 1.0), 4)},
                            config={"gate": {"metric": "validation:accuracy"}})
        for step in ("Initialize", "Train", "Evaluate"):
            ledger.begin_step(build.id, step)
            ledger.end_step(build.id, step)
        status = rng.choice(statuses)
        ledger.finish_build(build.id, status, reason=None if status == "SUCCEEDED" else "ValueError: bench")
    running = ledger.create_build(pipeline, "cli", "the running one")
    ledger.update_build(running.id, status="RUNNING", started_at=time.time() - 120)
    ledger.begin_step(running.id, "Train")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure_cold(script: str, args: list[str], envelope: dict) -> float:
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", script, *args], input=json.dumps(envelope), capture_output=True,
                         text=True, cwd=str(REPO), check=True)
    elapsed = time.perf_counter() - started
    assert json.loads(out.stdout)["response"], out.stdout
    return elapsed


def measure_many(pipelines: int, builds: int, warm: int) -> dict[str, dict[str, float]]:
    """Warm p50/p99 of one skill over ``pipelines`` ledgers of ``builds`` builds each."""
    from lambda_pipeline.adapters.local.ledger import SqliteLedger
    from lambda_pipeline.adapters.local.ledger_builds import LedgerBuilds
    from lambda_pipeline.model import PipelineInfo
    from lambda_pipeline.pipelines import FixedPipelines
    from skill.app import SkillApp
    from skill.envelopes import intent_request
    from skill.settings import SkillSettings

    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        directory = {}
        for i in range(pipelines):
            path = str(Path(tmp) / f"ledger-{i}.db")
            ledger = SqliteLedger(path)
            fill_ledger(ledger, builds, f"model-{i}")
            ledger.close()
            directory[PipelineInfo(f"model-{i}", frozenset({"amzn1.ask.account.sagebuild-local"}))] = \
                LedgerBuilds(path, str(Path(tmp) / f"jobs-{i}"))
        app = SkillApp(FixedPipelines(directory), SkillSettings())
        for label, (intent, slots) in MANY_INTENTS.items():
            for _ in range(20):
                app.handle(intent_request(intent, slots))
            samples = []
            for _ in range(warm):
                envelope = intent_request(intent, slots)
                started = time.perf_counter()
                response = app.handle(envelope)
                samples.append((time.perf_counter() - started) * 1000)
            speech = response["response"]["outputSpeech"]["ssml"]
            assert "model" in speech, (label, speech)
            out[label] = {"p50_ms": round(percentile(samples, 0.5), 3), "p99_ms": round(percentile(samples, 0.99), 3)}
            print(f"{pipelines} pipelines {label:<28} p50 {out[label]['p50_ms']:7.3f} ms   "
                  f"p99 {out[label]['p99_ms']:7.3f} ms", file=sys.stderr)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=1000)
    parser.add_argument("--warm", type=int, default=300)
    parser.add_argument("--cold", type=int, default=7)
    parser.add_argument("--pipelines", type=int, default=10, help="the many-pipelines case (0: skip it)")
    parser.add_argument("--only-pipelines", action="store_true", help="run the many-pipelines case alone")
    args = parser.parse_args()
    many = measure_many(args.pipelines, args.builds, args.warm) if args.pipelines else {}
    many_worst = max((v["p99_ms"] for v in many.values()), default=None)
    if args.only_pipelines:
        print(json.dumps({"pipelines": args.pipelines, "builds_each": args.builds, "warm": many,
                          "warm_worst_p99_ms": many_worst, "targets": {"warm_p99_ms": 10}}))
        return 0

    from infrastructure.local.service import LocalService
    from lambda_pipeline.adapters.local.ledger import SqliteLedger
    from sagebuild.project import copy_example
    from skill.app import SkillApp
    from skill.envelopes import intent_request
    from skill.settings import SkillSettings

    warm: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = Path(tmp) / "wine"
        copy_example("wine", project)
        (project / "sagebuild.json").write_text((project / "sagebuild.json").read_text().replace(
            '"when_running": "queue"', '"when_running": "refuse"'))
        with LocalService(str(project)) as service:
            fill_ledger(service.ports.ledger, args.builds)
            app = SkillApp(service.builds, SkillSettings(pipeline="wine-classifier"))
            for name, slots in INTENTS.items():
                intent = name.split("(")[0]
                envelope = intent_request(intent, slots)
                for _ in range(20):
                    app.handle(envelope)
                samples = []
                for _ in range(args.warm):
                    envelope = intent_request(intent, slots)
                    started = time.perf_counter()
                    response = app.handle(envelope)
                    samples.append((time.perf_counter() - started) * 1000)
                assert "outputSpeech" in response["response"], (name, response)
                warm[name] = {"p50_ms": round(percentile(samples, 0.5), 3), "p99_ms": round(percentile(samples, 0.99), 3)}
                print(f"{name:<28} p50 {warm[name]['p50_ms']:7.3f} ms   p99 {warm[name]['p99_ms']:7.3f} ms",
                      file=sys.stderr)
        ledger_path = str(project / ".sagebuild" / "ledger.db")
        SqliteLedger(ledger_path).close()
        envelope = intent_request("BuildStatusIntent")
        ours, minimal = [], []
        for _ in range(args.cold):  # alternate, so machine noise hits both alike
            minimal.append(measure_cold(MINIMAL_SKILL, [], envelope))
            ours.append(measure_cold(SAGEBUILD_SKILL, [ledger_path, str(project / ".sagebuild" / "jobs")], envelope))
    cold = {"sagebuild_ms": round(statistics.median(ours) * 1000, 1),
            "minimal_ask_sdk_ms": round(statistics.median(minimal) * 1000, 1)}
    cold["ratio"] = round(cold["sagebuild_ms"] / cold["minimal_ask_sdk_ms"], 3)
    worst = max(v["p99_ms"] for v in warm.values())
    print(f"cold start: sagebuild {cold['sagebuild_ms']} ms, minimal ask-sdk skill {cold['minimal_ask_sdk_ms']} ms",
          file=sys.stderr)
    print(json.dumps({"builds_in_ledger": args.builds, "warm": warm, "warm_worst_p99_ms": worst, "cold_start": cold,
                      "many_pipelines": {"pipelines": args.pipelines, "builds_each": args.builds, "warm": many,
                                         "warm_worst_p99_ms": many_worst},
                      "targets": {"warm_p99_ms": 10, "cold_start_ratio": 1.5}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
