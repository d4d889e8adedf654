"""A second app process for tests/test_permission_cache.py.

``python -m tests.permission_process <username> <password>`` builds the app (as a web process
does), signs in, prints the sign-in's status, then answers each path read from stdin with the
status of a GET of it, one line each, until stdin closes. Its permission cache lives as long
as the process.
"""

from __future__ import annotations

import sys

from portal import create_app


def main(username: str, password: str) -> None:
    app = create_app({"WTF_CSRF_ENABLED": False, "WRITE_RATE_LIMIT": "", "WRITE_IP_RATE_LIMIT": ""})
    client = app.test_client()
    signed_in = client.post("/login/", data={"username": username, "password": password})
    print(signed_in.status_code, flush=True)
    for line in sys.stdin:
        print(client.get(line.strip()).status_code, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
