"""Cold start of the AWS adapters, as a Lambda container builds them (the skill, the launch and
state-change functions and every step build all of them from the stack's environment).

Three kinds of new Python process, measured alternately in the same run, --runs times each,
medians of the time to build the Builds port on Step Functions:
  lazy   - as shipped: boto3 clients are built on first use;
  eager  - every client built up front (what the adapters did before);
  query  - lazy, plus the two clients a status question touches (DynamoDB, SSM).
No AWS call is made (building a client needs no network). The last line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r'''
import sys, time
t0 = time.perf_counter()
sys.path.insert(0, sys.argv[2])
from lambda_pipeline.adapters.aws.boto import _LazyClient
from lambda_pipeline.lambda_entry import builds_from_environment
builds = builds_from_environment()
mode = sys.argv[1]
adapters = [builds, *vars(builds.ports).values()]
lazy = [v for a in adapters if a is not None for v in vars(a).values() if isinstance(v, _LazyClient)]
if mode == "eager":
    for client in lazy:
        client.meta
elif mode == "query":
    builds.ports.ledger._db.meta
    builds.ports.config._ssm.meta
print(time.perf_counter() - t0, len(lazy))
'''

ENV = {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
       "SAGEBUILD_STATE_MACHINE": "arn:aws:states:us-east-1:123456789012:stateMachine:bench-build",
       "SAGEBUILD_CONFIG_PARAMETER": "/sagebuild/bench/config", "SAGEBUILD_LEDGER_TABLE": "bench-ledger",
       "SAGEBUILD_ARTIFACTS_BUCKET": "bench-artifacts",
       "SAGEBUILD_STATUS_TOPIC": "arn:aws:sns:us-east-1:123456789012:bench-status",
       "SAGEBUILD_SAGEMAKER_ROLE": "arn:aws:iam::123456789012:role/bench", "SAGEBUILD_TRAINING_IMAGE": "image"}


def once(mode: str) -> tuple[float, int]:
    env = {**os.environ, **ENV}
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(REPO)], capture_output=True, text=True, env=env,
                         check=True).stdout.split()
    return float(out[0]), int(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    times: dict[str, list[float]] = {"lazy": [], "eager": [], "query": []}
    clients = 0
    for _ in range(args.runs):
        for mode in times:
            seconds, clients = once(mode)
            times[mode].append(seconds)
    medians = {mode: statistics.median(values) for mode, values in times.items()}
    for mode, value in medians.items():
        print(f"{mode:<6} {value * 1000:7.1f} ms  (median of {args.runs})")
    print(json.dumps({"runs": args.runs, "clients": clients, "median_ms": {k: round(v * 1000, 1) for k, v in medians.items()},
                      "eager_over_lazy": round(medians["eager"] / medians["lazy"], 2),
                      "query_over_eager": round(medians["query"] / medians["eager"], 2)}))


if __name__ == "__main__":
    main()
