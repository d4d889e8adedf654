#!/usr/bin/env bash
# Set up and run the whole test suite. Uses PostgreSQL / Redis when DATABASE_URL / REDIS_URL
# are set, else SQLite and an embedded Valkey. Browser tests drive Debian's chromium, which
# this script installs with apt-get when it is missing and it runs as root.
source "$(dirname "$0")/_venv.sh" test
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the browser tests" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# Two test processes (pytest-xdist; ORDERBRIDGE_TEST_PROCESSES=0 runs in this one): each has
# its own database schema or file, Redis database, and portal server for the browser tests;
# a file's tests stay in one process (tests/conftest.py).
exec .venv/bin/python -m pytest -n "${ORDERBRIDGE_TEST_PROCESSES:-2}" --dist loadfile "$@"
