"""``python -m sheets.emulator --port N``: serve the Sheets API emulator until interrupted."""

from __future__ import annotations

import argparse

from .server import EmulatorServer
from .state import Config, Emulator


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve forever."""
    parser = argparse.ArgumentParser(prog="python -m sheets.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--quota-reads", type=int, default=60, help="reads per user per window")
    parser.add_argument("--quota-writes", type=int, default=60, help="writes per user per window")
    parser.add_argument("--quota-window", type=float, default=60.0, help="quota window, seconds")
    parser.add_argument(
        "--no-auth", action="store_true", help="accept requests without a /token bearer token"
    )
    args = parser.parse_args(argv)
    config = Config(
        quota_reads=args.quota_reads,
        quota_writes=args.quota_writes,
        quota_window_s=args.quota_window,
        auth_required=not args.no_auth,
    )
    server = EmulatorServer((args.host, args.port), Emulator(config))
    print(f"Sheets API emulator listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
