"""Run ``orderbridge worker`` with a slowed-down sync step, so tests can overlap or kill syncs.

``python -m tests.sync_slow_worker <step> <seconds> worker ...``: ``step`` is ``read`` (sleep
after reading the sheet) or ``apply`` (sleep after the records were applied, before the sheet
write), in the first sync the worker runs. Everything else is the real worker and the real
job.
"""

from __future__ import annotations

import sys
import time

import jobs.sync as sync_job
from portal.cli import main


def _slow(original, seconds: float):
    slept = []

    def wrapper(*args, **kwargs):
        result = original(*args, **kwargs)
        if not slept:  # only the first sync this process runs
            slept.append(True)
            time.sleep(seconds)
        return result

    return wrapper


if __name__ == "__main__":
    step, seconds = sys.argv[1], float(sys.argv[2])
    name = {"read": "_read", "apply": "_apply"}[step]
    setattr(sync_job, name, _slow(getattr(sync_job, name), seconds))
    sys.argv = [sys.argv[0], *sys.argv[3:]]
    main()
