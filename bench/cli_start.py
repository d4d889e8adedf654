"""How long each ``orderbridge`` command takes to start: every ``--help``, and cheap commands
that build the app (the README's "every command starts in under 1.5 s").

Run: .venv/bin/python bench/cli_start.py [--runs 3] [--only audit,roles]

Each command runs ``--runs`` times as a new process (``python -m portal.cli``, as the
``orderbridge`` script runs it) in demo mode on a fresh instance folder migrated first; the
figures are the best wall-clock time of the runs and the CPU time (user + system) of that
run, so a busy machine shows as wall time above CPU time. The load average is printed too.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HELP = [
    ["--help"],
    *([name, "--help"] for name in ("audit", "db", "demo", "enqueue", "fab", "roles")),
    *([name, "--help"] for name in ("scheduler", "seed-demo", "sheets", "stock", "worker")),
    ["sheets", "sync", "--help"],
    ["db", "upgrade", "--help"],
]
WITH_APP = [  # commands that build the app and do little else
    ["db", "current"],
    ["audit", "verify"],
    ["roles", "sync"],
    ["sheets", "list"],
    ["enqueue", "verify-audit"],
]


def timed(args: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Wall and CPU seconds of one run, and its exit code."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0 or "Traceback" in done.stderr:
        print(f"  {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-300:]}")
    return wall, cpu, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated command names to time")
    options = parser.parse_args()
    only = {name for name in options.only.split(",") if name}
    with tempfile.TemporaryDirectory() as instance:
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("DATABASE_URL", "SECRET_KEY", "FLASK_APP")
        }
        env.update(ORDERBRIDGE_MODE="demo", ORDERBRIDGE_INSTANCE_DIR=instance)
        if env.get("REDIS_URL") is None:
            env["REDIS_URL"] = "redis://127.0.0.1:6379/9"  # only `enqueue` talks to it
        timed(["db", "upgrade"], env)
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"{'command':<28} {'wall s':>7} {'cpu s':>7}")
        worst = 0.0
        for args in [*HELP, *WITH_APP]:
            if only and args[0] not in only and args != ["--help"]:
                continue
            runs = [timed(args, env) for _ in range(options.runs)]
            wall, cpu, _ = min(runs)
            worst = max(worst, wall)
            print(f"{' '.join(args):<28} {wall:7.2f} {cpu:7.2f}")
        print(f"slowest: {worst:.2f} s")


if __name__ == "__main__":
    main()
