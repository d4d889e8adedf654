"""gunicorn settings for the portal: ``gunicorn 'portal:create_app()'`` picks this file up from
the working directory (the repository root). Every value can be overridden on the command line
or with ``GUNICORN_CMD_ARGS``; docs/security.md, "Limits", explains the choices.

One slow request must not starve the others: several worker processes, each with a few
threads, so a request busy in Python (or waiting on the database) holds one thread, not the
site; a hard timeout that kills a worker stuck beyond it; and limits on the request line and
headers that gunicorn enforces before the app sees anything (the body is bounded by the app's
``MAX_CONTENT_LENGTH``).
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Processes: one per core plus one, at least two (a second process serves while one is busy).
workers = int(os.environ.get("GUNICORN_WORKERS", max(2, multiprocessing.cpu_count() + 1)))
# Threads per process: requests waiting on the database or the network share a process.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# A request still running after this many seconds has its worker killed and restarted.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Request line, header count and header size (gunicorn's defaults are 4094, 100, 8190).
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Restart each worker after this many requests (with jitter), so slow leaks never build up.
max_requests = 2000
max_requests_jitter = 200
# Forwarded headers are trusted only from the proxy the portal is told about (PROXY_FIX_X_FOR).
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
