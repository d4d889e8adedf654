#!/usr/bin/env bash
# Set up and run the whole test suite. Uses PostgreSQL / Redis when DATABASE_URL / REDIS_URL
# are set, else SQLite and an embedded Valkey. Browser tests drive Debian's chromium, which
# this script installs with apt-get when it is missing and it runs as root.
source "$(dirname "$0")/_venv.sh" test
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the browser tests" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# One test process by default; ORDERBRIDGE_TEST_PROCESSES=N spreads the files over N processes
# (pytest-xdist), each with its own database schema or file, Redis database and portal server
# for the browser tests (tests/conftest.py). On 2 cores two processes were slower than one.
exec .venv/bin/python -m pytest -n "${ORDERBRIDGE_TEST_PROCESSES:-0}" --dist loadfile "$@"
