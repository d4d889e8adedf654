#!/usr/bin/env bash
# Set up and run the whole test suite. Uses PostgreSQL / Redis when DATABASE_URL / REDIS_URL
# are set, else SQLite and an embedded Valkey. Browser tests drive Debian's chromium, which
# this script installs with apt-get when it is missing and it runs as root.
source "$(dirname "$0")/_venv.sh" test
if [ ! -x /usr/bin/chromium ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  echo "installing Debian's chromium for the browser tests" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
# Two test processes by default where there are two cores or more, else one;
# ORDERBRIDGE_TEST_PROCESSES=N asks for N (0: one, in this process). The files are spread over
# the processes (pytest-xdist), each with its own database schema or SQLite file, Redis
# database and portal server for the browser tests (tests/conftest.py). On Redis the processes
# use databases 13, 14, ... (ORDERBRIDGE_TEST_REDIS_DB), so at most 3.
if [ -z "${ORDERBRIDGE_TEST_PROCESSES:-}" ]; then
  if [ "$(nproc 2>/dev/null || echo 1)" -ge 2 ]; then ORDERBRIDGE_TEST_PROCESSES=2; else ORDERBRIDGE_TEST_PROCESSES=0; fi
fi
exec .venv/bin/python -m pytest -n "$ORDERBRIDGE_TEST_PROCESSES" --dist loadfile "$@"
