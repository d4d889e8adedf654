"""The suite's own set-up: ../shared skips locally when absent and fails under CI; Redis
tests use a database of their own."""

from __future__ import annotations

import pytest

from tests import conftest
from tests.conftest import shared_path


def test_an_absent_shared_file_skips_the_test_locally(monkeypatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is absent"):
        shared_path("data", "no-such-workbook.xlsx")


def test_an_absent_shared_file_fails_the_test_under_ci(monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must provide it"):
        shared_path("data", "no-such-workbook.xlsx")


def test_a_present_shared_file_is_returned(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("CI", "true")
    monkeypatch.setattr("tests.conftest.SHARED", tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "book.xlsx").write_bytes(b"x")
    assert shared_path("data", "book.xlsx") == tmp_path / "data" / "book.xlsx"
    assert shared_path(tmp_path / "data") == tmp_path / "data"  # absolute paths as they are


def test_the_suite_uses_its_own_redis_database_never_the_named_one() -> None:
    assert conftest._with_test_db("redis://127.0.0.1:6379/0", "13") == "redis://127.0.0.1:6379/13"
    assert conftest._with_test_db("redis://cache:6379", "13") == "redis://cache:6379/13"
    with pytest.raises(pytest.exit.Exception, match="other than the one REDIS_URL names"):
        conftest._with_test_db("redis://127.0.0.1:6379/13", "13")
    with pytest.raises(pytest.exit.Exception, match="from 0 to 15"):
        conftest._with_test_db("redis://127.0.0.1:6379/0", "16")


def test_each_xdist_process_empties_a_redis_database_of_its_own() -> None:
    assert conftest._worker_redis_db("13", "gw0") == "13"
    assert conftest._worker_redis_db("13", "gw1") == "14"
    assert conftest._worker_redis_db("3", "gw1") == "4"
