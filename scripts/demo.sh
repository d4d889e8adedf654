#!/usr/bin/env bash
# Set up and run the portal with demo data at http://127.0.0.1:5000: web, RQ worker and an
# embedded Redis-compatible server together. Ctrl-C stops everything.
# Users: specialist, supervisor, auditor, admin; password: $DEMO_PASSWORD or "demo".
source "$(dirname "$0")/_venv.sh" demo
export ORDERBRIDGE_MODE=${ORDERBRIDGE_MODE:-demo}
exec .venv/bin/orderbridge demo "$@"
