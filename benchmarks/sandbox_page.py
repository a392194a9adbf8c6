"""Benchmark: time to serve one 200-record page of GET /suppliers (limits off, scale 10000).

Run: .venv/bin/python benchmarks/sandbox_page.py [--requests 200] [--scale 10000]
Prints one result line and writes benchmarks/results/sandbox_page.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import requests
from precoro_sandbox.options import SandboxOptions
from precoro_sandbox.server import SandboxServer

RESULTS = Path(__file__).resolve().parent / "results" / "sandbox_page.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--scale", type=int, default=10000)
    args = parser.parse_args()

    started = time.perf_counter()
    with SandboxServer(SandboxOptions(scale=args.scale, limits="off")) as sb:
        build_seconds = time.perf_counter() - started
        session = requests.Session()
        session.headers.update(sb.headers)
        pages = max(1, args.scale // 200)
        session.get(f"{sb.url}/suppliers", params={"per_page": 200, "page": 1}).raise_for_status()
        timings: list[float] = []
        sizes: list[int] = []
        for k in range(args.requests):
            page = k % pages + 1
            t0 = time.perf_counter()
            response = session.get(f"{sb.url}/suppliers", params={"per_page": 200, "page": page})
            body = response.content
            timings.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
            assert len(response.json()["data"]) == 200
            sizes.append(len(body))
    timings.sort()
    result = {
        "benchmark": "sandbox_page",
        "scale": args.scale,
        "requests": args.requests,
        "per_page": 200,
        "median_ms": round(statistics.median(timings), 2),
        "p95_ms": round(timings[int(0.95 * (len(timings) - 1))], 2),
        "max_ms": round(timings[-1], 2),
        "mean_body_bytes": int(statistics.mean(sizes)),
        "dataset_build_seconds": round(build_seconds, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"sandbox_page: median {result['median_ms']} ms, p95 {result['p95_ms']} ms per "
        f"200-record page ({args.requests} requests, scale {args.scale}, "
        f"build {result['dataset_build_seconds']} s)"
    )


if __name__ == "__main__":
    main()
