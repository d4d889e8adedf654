"""Permission checks from one cached load per user (issue 18).

Each process keeps a user's permissions until the permission stamp moves (database triggers
bump it on any change of roles, their permissions or who holds them): a warm page reads no
permission, the load after a change is one statement, and a role change made here takes
effect on the very next request of another app process.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flask import Flask

from portal.extensions import appbuilder, db
from portal.security import CUSTOMERS, SPECIALIST
from tests.conftest import TEST_PASSWORD, login
from tests.test_home import counted

ROOT = Path(__file__).resolve().parent.parent
PAGE = "/api/v1/customer/"
ANSWER_SECONDS = 120  # a deadline for the other process's answer, not a wait


def _permission_loads(statements: list[str]) -> list[str]:
    return [each for each in statements if "ab_permission" in each]


def _user_loads(statements: list[str]) -> list[str]:
    """The loads of a user's permissions (the others are the Public role's, which the API
    checks first)."""
    return [each for each in _permission_loads(statements) if "ab_user_role" in each]


@contextmanager
def customers_unreadable(app: Flask) -> Iterator[None]:
    """The Specialist role without ``can_read`` on customers (given back afterwards)."""
    sm = appbuilder.sm
    role = sm.find_role(SPECIALIST)
    granted = sm.find_permission_view_menu("can_read", CUSTOMERS)
    sm.del_permission_role(role, granted)
    db.session.commit()
    try:
        yield
    finally:
        sm.add_permission_role(sm.find_role(SPECIALIST), granted)
        db.session.commit()


def test_a_warm_page_reads_no_permission_and_a_change_one_statement(ctx) -> None:
    client = login(ctx, "specialist")
    assert client.get(PAGE).status_code == 200
    with counted() as statements:
        assert client.get(PAGE).status_code == 200
    assert _permission_loads(statements) == []  # from the process's cache
    with customers_unreadable(ctx):
        with counted() as statements:
            assert client.get(PAGE).status_code == 403
        assert len(_user_loads(statements)) == 1  # the one cached load
        assert len(_permission_loads(statements)) == 2  # and the Public role's
    with counted() as statements:
        assert client.get(PAGE).status_code == 200
    assert len(_user_loads(statements)) == 1


class OtherProcess:
    """``tests.permission_process`` signed in as a user: a second app process."""

    def __init__(self, username: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.permission_process", username, TEST_PASSWORD],
            cwd=ROOT,
            env=dict(os.environ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        assert self._answer() == "302", "the other process did not sign in"

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def _answer(self) -> str:
        return self.lines.get(timeout=ANSWER_SECONDS)

    def get(self, path: str) -> int:
        self.process.stdin.write(path + "\n")
        self.process.stdin.flush()
        return int(self._answer())

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=ANSWER_SECONDS)


def test_a_role_change_takes_effect_on_the_next_request_of_another_process(ctx) -> None:
    other = OtherProcess("specialist")
    try:
        assert other.get(PAGE) == 200
        assert other.get(PAGE) == 200  # now answered from its cache
        with customers_unreadable(ctx):
            assert other.get(PAGE) == 403
        assert other.get(PAGE) == 200
    finally:
        other.close()
