"""The ``orderbridge`` command group: help in an empty environment, clear settings errors,
and the demo seeding refused in production."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from werkzeug.security import check_password_hash

from portal.extensions import appbuilder, db
from portal.models import AuditEvent
from tests.conftest import REPO, TEST_PASSWORD

TOP_COMMANDS = {
    "audit",
    "db",
    "demo",
    "enqueue",
    "fab",
    "import",
    "roles",
    "run",
    "scheduler",
    "seed-demo",
    "sheets",
    "worker",
}
# Walks every command and subcommand, printing "path<TAB>exit code<TAB>exception" per --help.
WALK_HELP = """
import click
from click.testing import CliRunner
from portal.cli import cli

ctx = click.Context(cli)

def walk(group, path):
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield [*path, name]
        if isinstance(command, click.Group):
            yield from walk(command, [*path, name])

for path in walk(cli, []):
    result = CliRunner().invoke(cli, [*path, "--help"], prog_name="orderbridge")
    print(" ".join(path), result.exit_code, repr(result.exception), sep="\\t")
"""


def _empty_env() -> dict[str, str]:
    """No SECRET_KEY, no ORDERBRIDGE_MODE, nothing else but PATH."""
    return {"PATH": os.environ.get("PATH", "")}


def _orderbridge(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "portal.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_command_in_an_empty_environment(tmp_path: Path) -> None:
    done = _orderbridge("--help", env=_empty_env(), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    listed = {
        line.split()[0]
        for line in done.stdout.split("Commands:")[1].splitlines()
        if line.startswith("  ")
    }
    assert listed >= TOP_COMMANDS
    sheets = _orderbridge("sheets", "--help", env=_empty_env(), cwd=tmp_path)
    assert sheets.returncode == 0 and sheets.stderr == "", sheets.stderr
    assert {"add", "init", "sync", "schedule"} <= set(sheets.stdout.split())


def test_every_commands_help_works_in_an_empty_environment(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WALK_HELP],
        cwd=tmp_path,
        env=_empty_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    rows = [line.split("\t") for line in done.stdout.splitlines()]
    paths = {row[0] for row in rows}
    assert paths >= TOP_COMMANDS
    assert {"roles sync", "audit verify", "db upgrade", "fab create-admin", "sheets sync"} <= paths
    assert [row for row in rows if row[1:] != ["0", "None"]] == []


def test_production_without_secret_key_is_one_clear_line(tmp_path: Path) -> None:
    done = _orderbridge("roles", "sync", env=_empty_env(), cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: SECRET_KEY is not set"), done.stderr


def test_seed_demo_refuses_to_run_in_production(ctx) -> None:
    env = {
        **os.environ,
        "ORDERBRIDGE_MODE": "production",
        "SECRET_KEY": "x" * 32,
        "AUDIT_HMAC_KEYS": "k1:" + "ab" * 32,
    }
    events_before = db.session.query(AuditEvent).count()
    done = _orderbridge("seed-demo", "--password", "guessable", env=env, cwd=REPO)
    assert done.returncode == 1
    assert "refuses to run in production mode" in done.stderr
    assert "Traceback" not in done.stderr
    db.session.expire_all()
    assert db.session.query(AuditEvent).count() == events_before
    admin = appbuilder.sm.find_user(username="admin")
    assert check_password_hash(admin.password, TEST_PASSWORD)  # not reset


# Runs one command in this process, then names the heavy modules it loaded.
RUN_AND_LIST_MODULES = """
import sys
from portal.cli import cli
try:
    cli(sys.argv[1:], prog_name="orderbridge")
except SystemExit as done:
    assert not done.code, done.code
heavy = ("portal.api", "portal.views", "redis")
print("LOADED", sorted(name for name in heavy if name in sys.modules))
"""


def test_commands_that_build_the_app_run_without_a_traceback(tmp_path: Path) -> None:
    """Cheap commands that need the app, on a fresh instance; those that serve no page build
    it without the views, the REST API and redis (what makes them start sooner)."""
    env = {**_empty_env(), "ORDERBRIDGE_MODE": "demo", "ORDERBRIDGE_INSTANCE_DIR": str(tmp_path)}
    runs = {
        ("db", "upgrade"): ("LOADED", "[]"),
        ("roles", "sync"): ("roles: ", "['portal.api', 'portal.views', 'redis']"),
        ("audit", "verify"): ("audit chain intact: ", "[]"),
        ("sheets", "list"): ("LOADED", "[]"),  # no tracker yet: nothing listed
    }
    for args, (first_line, loaded) in runs.items():
        done = subprocess.run(
            [sys.executable, "-c", RUN_AND_LIST_MODULES, *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, (args, done.stderr)
        assert "Traceback" not in done.stderr, (args, done.stderr)
        lines = done.stdout.splitlines()
        assert lines[0].startswith(first_line), (args, done.stdout)
        assert lines[-1] == f"LOADED {loaded}", (args, done.stdout)
