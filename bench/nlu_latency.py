"""`say`'s resolver: warm time per utterance and cold load per locale, on the NLU evaluation sets.

Warm: each locale's resolver resolves every utterance of tests/nlu/<locale>.json (in-domain and
out-of-domain) --rounds times after a warm-up; p50/p99 per utterance. Cold: building the resolver
(reading the model, features, indexes) in this process, the first time. The last line is one JSON
object. Target: warm p99 <= 20 ms per utterance in every locale.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LOCALES = ("en-US", "fr-FR", "ja-JP")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    from skill.nlu import Resolver

    results: dict[str, dict[str, float]] = {}
    for locale in LOCALES:
        utterances = [d["inputs"]["utterance"] for d in json.loads(
            (REPO / "tests" / "nlu" / f"{locale}.json").read_text(encoding="utf-8"))["data"]]
        started = time.perf_counter()
        resolver = Resolver(locale)
        cold_ms = (time.perf_counter() - started) * 1000
        for utterance in utterances:
            resolver.resolve(utterance)
        samples = []
        for _ in range(args.rounds):
            for utterance in utterances:
                started = time.perf_counter()
                resolver.resolve(utterance)
                samples.append((time.perf_counter() - started) * 1000)
        results[locale] = {"utterances": len(utterances), "cold_load_ms": round(cold_ms, 1),
                           "p50_ms": round(percentile(samples, 0.5), 3), "p99_ms": round(percentile(samples, 0.99), 3)}
        print(f"{locale}: load {cold_ms:6.1f} ms   p50 {results[locale]['p50_ms']:6.3f} ms   "
              f"p99 {results[locale]['p99_ms']:6.3f} ms", file=sys.stderr)
    worst = max(r["p99_ms"] for r in results.values())
    print(json.dumps({"resolver": results, "warm_worst_p99_ms": worst, "targets": {"warm_p99_ms": 20}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
