"""`make bench`: run every benchmark script in turn and print their result lines.

Each script measures one thing (sandbox page serving, tap throughput, target upsert,
webhook receiver, the ledger's overhead on SQLite and PostgreSQL, the governor's rate
at the real limits) and writes its figures to benchmarks/results/<name>.json.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = (
    "sandbox_page",
    "tap_throughput",
    "target_upsert",
    "webhooks",
    "webhook_cost",
    "ledger",
    "governor_rate",
)


def main() -> int:
    scripts = [HERE / f"{name}.py" for name in ORDER if (HERE / f"{name}.py").exists()]
    failures = 0
    for script in scripts:
        print(f"== {script.stem}", flush=True)
        result = subprocess.run([sys.executable, str(script)], check=False)
        failures += result.returncode != 0
    print(f"results in {HERE / 'results'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
