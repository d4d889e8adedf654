"""Settings: embedded defaults, URL normalisation and the SECRET_KEY rule."""

from __future__ import annotations

import pytest

import config


def test_production_refuses_to_start_without_a_secret_key(monkeypatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("ORDERBRIDGE_MODE", "production")
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        config.build_settings()


def test_demo_and_test_modes_run_without_a_secret_key(monkeypatch) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    for mode in ("demo", "test"):
        monkeypatch.setenv("ORDERBRIDGE_MODE", mode)
        assert config.build_settings()["SECRET_KEY"]


def test_unknown_mode_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_MODE", "staging")
    with pytest.raises(config.ConfigError, match="ORDERBRIDGE_MODE"):
        config.build_settings()


def test_embedded_defaults_and_postgres_urls(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("ORDERBRIDGE_MODE", "demo")
    monkeypatch.setenv("ORDERBRIDGE_INSTANCE_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = config.build_settings()
    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'orderbridge.db'}"
    assert settings["REDIS_URL"] == ""
    assert config.normalise_database_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    assert config.normalise_database_url("postgresql://h/db") == "postgresql+psycopg://h/db"


def test_per_user_credit_limits_are_parsed_and_checked(monkeypatch) -> None:
    monkeypatch.setenv("ORDERBRIDGE_MODE", "test")
    monkeypatch.setenv("CREDIT_APPROVAL_USER_LIMITS", "alice=2500, bob=10000.50")
    assert config.build_settings()["CREDIT_APPROVAL_USER_LIMITS"] == {
        "alice": "2500",
        "bob": "10000.50",
    }
    for bad in ("alice", "alice=lots", "=5", "alice=-1"):
        monkeypatch.setenv("CREDIT_APPROVAL_USER_LIMITS", bad)
        with pytest.raises(config.ConfigError, match="CREDIT_APPROVAL_USER_LIMITS"):
            config.build_settings()
