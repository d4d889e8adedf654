"""``orderbridge demo``: one command that prepares the demo and runs its processes.

The database is prepared in this process, which has the app already (one start-up, not one
per step), with one progress line per step: migrations, roles, users, the demo data. Then the
web server (gunicorn), an RQ worker and the scheduler start as children, next to an embedded
Valkey unless ``REDIS_URL`` names a server. Their output is passed through, each line named
by its process, until the demo stops.

Ctrl-C (or SIGTERM) stops everything within :data:`STOP_KILL` seconds: each child gets
SIGTERM (the terminal has sent them SIGINT already), then again after :data:`STOP_GRACE`
seconds (an RQ worker's second signal is a cold shutdown, which ends a running job), then
SIGKILL; the embedded Valkey stops last. One line says what stopped and how long it took.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import click
from flask import Flask

STOP_GRACE = 1.5  # seconds of warm shutdown (an RQ job may finish) before the second signal
STOP_KILL = 2.5  # seconds after which whatever still runs is killed
READY_TIMEOUT = 180.0  # seconds the web server may take to answer its first request


class Progress:
    """One line per step: ``label… [what happened, ]1.2 s``."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.note = ""

    @classmethod
    @contextmanager
    def step(cls, label: str) -> Iterator[Progress]:
        step = cls(label)
        click.echo(f"{label}… ", nl=False)
        started = time.perf_counter()
        yield step
        took = time.perf_counter() - started
        click.echo(f"{step.note}, {took:.1f} s" if step.note else f"{took:.1f} s")


@contextmanager
def _quiet_migrations() -> Iterator[None]:
    """Alembic logs each migration at INFO; the progress line says it instead."""
    logging.disable(logging.INFO)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def prepare(password: str, order_count: int) -> None:
    """Migrate, sync the roles, (re)set the demo users and seed; one progress line each."""
    from flask_migrate import upgrade

    from portal.demo import ensure_users, seed_demo_data
    from portal.extensions import appbuilder
    from portal.security import sync_roles, sync_summary

    with Progress.step("migrating"), _quiet_migrations():
        upgrade()
    with Progress.step("roles") as step:
        step.note = sync_summary(sync_roles(appbuilder))
    with Progress.step("users") as step:
        done = ensure_users(password)
        created = sum(line.startswith("created") for line in done)
        step.note = f"{created} created, {len(done) - created} passwords reset"
    with Progress.step(f"seeding {order_count} orders") as step:
        if not seed_demo_data(order_count):
            step.note = "demo data already there"


class Child:
    """One process of the demo, its output passed through with its name in front."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name = name
        self.quiet = threading.Event()
        self.process = subprocess.Popen(
            command,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        threading.Thread(target=self._pass_output, name=f"{name}-output", daemon=True).start()

    @classmethod
    def adopt(cls, name: str, process: subprocess.Popen) -> Child:
        """A child started elsewhere, whose output is its own."""
        child = cls.__new__(cls)
        child.name, child.process, child.quiet = name, process, threading.Event()
        return child

    def _pass_output(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if not self.quiet.is_set():
                click.echo(f"{self.name} | {line}", nl=False)

    def running(self) -> bool:
        return self.process.poll() is None

    def signal(self, signum: int) -> None:
        if self.running():
            with suppress(ProcessLookupError):
                self.process.send_signal(signum)


def worker_exit(server: object, worker: object) -> None:
    """gunicorn's hook as a web worker exits (the demo's web runs with this module as its
    config): skip the final garbage collection of the app's objects, as ``main`` does."""
    gc.freeze()


def _children(host: str, port: int, env: dict[str, str]) -> list[Child]:
    cli = [sys.executable, "-m", "portal.cli"]
    web = [
        *(sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}"),
        *("--workers", "1", "--worker-class", "gthread", "--threads", "8"),
        *("--graceful-timeout", "1", "--log-level", "warning", "--config", f"python:{__name__}"),
        "portal:create_app()",
    ]
    return [
        Child("web", web, env),
        Child("worker", [*cli, "worker"], env),
        Child("scheduler", [*cli, "scheduler"], env),
    ]


def _mail_sink(app: Flask, env: dict[str, str]) -> list[Child]:
    """The demo's own SMTP sink (read on the Mailbox page), unless ``MAIL_SERVER`` names one."""
    if env.get("MAIL_SERVER"):
        return []
    from portal.mailbox import start_sink

    with Progress.step("mail sink") as step:
        process, port = start_sink(Path(app.config["MAILBOX_DIR"]))
        env.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(port))
        step.note = f"127.0.0.1:{port}, read it on the Mailbox page"
    return [Child.adopt("mail", process)]


def _demo_trackers(app: Flask, env: dict[str, str]) -> list[Child]:
    """The bundled Sheets emulator (unless Google is configured) and the demo's Excel and
    Google trackers of open orders (``portal.demo_trackers``)."""
    from portal.demo_trackers import ensure_excel_tracker, ensure_google_tracker

    instance = Path(app.config["INSTANCE_DIR"])
    children: list[Child] = []
    with Progress.step("trackers") as step:
        done = [ensure_excel_tracker(instance)]
        if not (env.get("SHEETS_API_URL") or env.get("GOOGLE_SERVICE_ACCOUNT_FILE")):
            from sheets.emulator.testing import write_service_account_file

            process = subprocess.Popen(
                [sys.executable, "-m", "sheets.emulator", "--port", "0"],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
                start_new_session=True,  # stopped with the others, not first by a Ctrl-C
            )
            children.append(Child.adopt("sheets", process))
            assert process.stdout is not None
            url = process.stdout.readline().rsplit(" ", 1)[-1].strip()  # "... listening on URL"
            account = write_service_account_file(str(instance / "sheets-emulator.json"), url)
            env.update(SHEETS_API_URL=url, GOOGLE_SERVICE_ACCOUNT_FILE=account)
            os.environ.update(SHEETS_API_URL=url, GOOGLE_SERVICE_ACCOUNT_FILE=account)
            done.append(ensure_google_tracker(account, url) + f" on the emulator at {url}")
        step.note = "; ".join(done)
    return children


def _wait_until_answering(url: str, children: list[Child]) -> None:
    """Poll ``url`` until it answers; stop early if a child died."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        _check_alive(children)
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise click.ClickException(f"the web server did not answer {url} in {READY_TIMEOUT:g} s")


def _check_alive(children: list[Child]) -> None:
    for child in children:
        if not child.running():
            raise click.ClickException(
                f"{child.name} exited with code {child.process.returncode}; stopping the demo"
            )


def _stop(children: list[Child], embedded: bool) -> str:
    """Stop every child (TERM, TERM again, KILL) and the embedded Valkey; the one line."""
    from jobs.queue import stop_embedded_server

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut this short
    started = time.monotonic()
    for child in children:
        child.quiet.set()
    schedule = ((0.0, signal.SIGINT), (STOP_GRACE, signal.SIGTERM), (STOP_KILL, signal.SIGKILL))
    for after, signum in schedule:
        while any(c.running() for c in children) and time.monotonic() - started < after:
            time.sleep(0.02)
        for child in children:
            child.signal(signum)  # skips a child that has exited
    for child in children:
        child.process.wait()
    if embedded:
        stop_embedded_server()
    names = [child.name for child in children] + (["Redis"] if embedded else [])
    listed = ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)
    return f"stopped {listed} in {time.monotonic() - started:.1f} s"


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def refuse_a_taken_port(host: str, port: int) -> None:
    """Stop before anything starts or changes when the web's address is taken (another demo
    still running, say): otherwise that one would answer in this demo's place."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds
        try:
            probe.bind((host, port))
        except OSError as error:
            raise click.ClickException(
                f"{host}:{port} is in use ({error.strerror}): is another demo still running? "
                "Stop it, or choose another port with --port."
            ) from error


def run_demo(app: Flask, host: str, port: int, password: str, order_count: int) -> None:
    """Prepare the demo, run its processes until Ctrl-C or SIGTERM, then stop them all."""
    from jobs.queue import start_embedded_server

    refuse_a_taken_port(host, port)
    began = time.perf_counter()
    for signum in (signal.SIGINT, signal.SIGTERM):  # also when started with SIGINT ignored
        signal.signal(signum, _interrupt)
    env = dict(os.environ, ORDERBRIDGE_MODE=app.config["ORDERBRIDGE_MODE"], PYTHONUNBUFFERED="1")
    embedded = not env.get("REDIS_URL")
    children: list[Child] = []
    failed = None
    try:
        if embedded:
            with Progress.step("starting Redis (embedded Valkey)") as step:
                env["REDIS_URL"] = start_embedded_server(Path(app.config["INSTANCE_DIR"]))
                os.environ["REDIS_URL"] = step.note = env["REDIS_URL"]
        prepare(password, order_count)
        children = _mail_sink(app, env)
        children += _demo_trackers(app, env)
        children += _children(host, port, env)
        probe = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        _wait_until_answering(f"http://{probe}:{port}/login/", children)
        running = "worker, scheduler, Redis" if embedded else "worker, scheduler"
        click.echo(
            f"web at http://{host}:{port} ({running} running), ready in "
            f"{time.perf_counter() - began:.1f} s; sign in as specialist, supervisor, auditor "
            f"or admin with password {password!r}. Ctrl-C stops everything."
        )
        while True:
            _check_alive(children)
            time.sleep(0.2)
    except KeyboardInterrupt:
        click.echo("")  # end the line the terminal's ^C is on
    except click.ClickException as error:
        failed = error
    finally:
        click.echo(_stop(children, embedded))
    if failed is not None:
        raise failed
