"""Run ``orderbridge worker`` with a sync step held open, so tests can overlap or kill syncs.

``python -m tests.sync_slow_worker <step> worker ...``: in the first sync the worker runs, after
``read`` (the sheet was read) or ``apply`` (the records were applied, before the sheet write)
it prints :data:`STEP_REACHED` and waits for a line on its stdin before it goes on; ``none``
holds nothing. Everything else is the real worker and the real job.
"""

from __future__ import annotations

import sys

import jobs.sync as sync_job
from portal.cli import main

STEP_REACHED = "sync-slow-worker: step reached"


def _held(original):
    held = []

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if not held:  # only the first sync this process runs
            held.append(True)
            print(STEP_REACHED, flush=True)
            sys.stdin.readline()  # the test's go-ahead (or EOF when it lets go)
        return result

    return wrapper


if __name__ == "__main__":
    step = sys.argv[1]
    if step != "none":
        name = {"read": "_read", "apply": "_apply"}[step]
        setattr(sync_job, name, _held(getattr(sync_job, name)))
    sys.argv = [sys.argv[0], *sys.argv[2:]]
    main()
