"""The ``orderbridge`` command group: Flask's CLI bound to ``create_app`` plus our commands.

``orderbridge run`` comes with Flask, ``orderbridge db upgrade`` with Flask-Migrate and
``orderbridge fab`` with FAB; this module adds ``roles sync``, ``seed-demo``, ``audit verify``,
``worker``, ``enqueue``, ``scheduler``, ``sheets …`` and ``demo`` (web, worker, scheduler and
embedded Redis in one command).
"""

from __future__ import annotations

import atexit
import functools
import gc
import importlib
import os
import secrets
import sys
from collections.abc import Callable
from typing import Any

import click
from flask import Flask, current_app
from flask.cli import FlaskGroup, with_appcontext

from config import ConfigError

roles_group = click.Group("roles", help="Roles and permissions declared in portal/security.py.")
audit_group = click.Group("audit", help="The hash-chained audit trail.")


@roles_group.command("sync")
@with_appcontext
def roles_sync() -> None:
    """Create or update the declared roles so they hold exactly their permissions."""
    from portal.extensions import appbuilder
    from portal.security import sync_roles, sync_summary

    click.echo("roles: " + sync_summary(sync_roles(appbuilder)))


@audit_group.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Re-compute the audit chain; exit 1 naming the first bad event if it was tampered with."""
    from portal.services import audit

    result = audit.verify()
    if result.ok:
        click.echo(
            f"audit chain intact: {result.checked} events verified ({result.legacy} legacy "
            f"unkeyed), {result.checkpoints} checkpoints hold"
        )
        return
    where = f"checkpoint line {result.bad_checkpoint}" if result.bad_checkpoint else "event"
    if not result.bad_checkpoint:
        where = f"event {result.bad_event_id}"
    click.echo(f"audit chain BROKEN at {where}: {result.problem}", err=True)
    sys.exit(1)


@audit_group.command("checkpoint")
@with_appcontext
def audit_checkpoint() -> None:
    """Verify the chain and append a signed checkpoint of its head (AUDIT_CHECKPOINT_FILE)."""
    from jobs.maintenance import checkpoint_audit_chain

    outcome = checkpoint_audit_chain()
    if not outcome["ok"]:
        click.echo(f"no checkpoint: the audit chain is BROKEN: {outcome['problem']}", err=True)
        sys.exit(1)
    click.echo(f"checkpoint appended to {outcome['file']}: {outcome['line']}")
    if outcome.get("mail_error"):
        click.echo(f"mailing it failed: {outcome['mail_error']}", err=True)
        sys.exit(1)


def _refuse_in_production(command: str) -> None:
    """Stop ``command`` with one clear line when the app runs in production mode."""
    if current_app.config["ORDERBRIDGE_MODE"] == "production":
        raise click.ClickException(
            f"`orderbridge {command}` refuses to run in production mode: it creates the demo "
            "users with a known password and resets the password of existing users of those "
            "names. Use ORDERBRIDGE_MODE=demo (or test) on a database of its own."
        )


@click.command("seed-demo")
@click.option("--password", help="Password of the demo users (else $DEMO_PASSWORD, else random).")
@click.option("--orders", "order_count", default=300, show_default=True, help="Orders to create.")
@click.option("--seed", default=7, show_default=True, help="Same seed, same data.")
@with_appcontext
def seed_demo(password: str | None, order_count: int, seed: int) -> None:
    """Load the demo data set and the users specialist, supervisor, auditor and admin.

    Refused in production mode: it creates users with a known password and resets the
    password of existing users of those names.
    """
    from portal.demo import demo_summary, ensure_users, seed_demo_data
    from portal.extensions import appbuilder
    from portal.security import sync_roles

    _refuse_in_production("seed-demo")
    sync_roles(appbuilder)
    generated = False
    if not password:
        password = os.environ.get("DEMO_PASSWORD")
    if not password:
        password, generated = secrets.token_urlsafe(12), True
    for line in ensure_users(password):
        click.echo(line)
    if generated:
        click.echo(f"demo password (generated): {password}")
    if seed_demo_data(order_count, seed):
        click.echo("demo data loaded: " + ", ".join(f"{k} {v}" for k, v in demo_summary().items()))
    else:
        click.echo("demo data already present; left as it is")


@click.command("worker")
@click.option("--queue", "queues", multiple=True, help="Queues to listen on (default: all).")
@click.option("--burst", is_flag=True, help="Stop when the queues are empty.")
@click.option("--no-scheduler", is_flag=True, help="Do not run RQ's scheduler in this worker.")
@with_appcontext
def worker(queues: tuple[str, ...], burst: bool, no_scheduler: bool) -> None:
    """Run an RQ worker with the app context (and RQ's scheduler).

    ``--queue excel`` (syncs of desktop-Excel xlwings trackers) needs Microsoft Excel: it is
    refused on a machine that cannot run it (Linux)."""
    from rq import Worker

    from jobs.context import set_app
    from jobs.queue import EXCEL_QUEUE, QUEUE_NAMES, connection, heartbeat_seconds, redis_url

    if EXCEL_QUEUE in queues:
        from sheets.backends.xlwings import excel_problem

        problem = excel_problem()
        if problem:
            raise click.ClickException(f"the {EXCEL_QUEUE} queue cannot run here: {problem}")
    set_app(current_app._get_current_object())  # type: ignore[attr-defined]
    names = list(queues) or list(QUEUE_NAMES)
    click.echo(f"worker listening on {', '.join(names)} at {redis_url()}")
    # The job's heartbeat every JOB_HEARTBEAT_SECONDS tells the scheduler's sweep it is alive.
    Worker(names, connection=connection(), job_monitoring_interval=heartbeat_seconds()).work(
        burst=burst, with_scheduler=not no_scheduler
    )


@click.command("enqueue")
@click.argument("job", type=click.Choice(["verify-audit"]))
@with_appcontext
def enqueue_job(job: str) -> None:
    """Put a maintenance job on the queue."""
    from jobs.maintenance import verify_audit_chain
    from jobs.queue import enqueue

    queued = enqueue(verify_audit_chain)
    click.echo(f"enqueued {job} as {queued.id}")


@click.command("demo")
@click.option("--port", default=5000, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--password", default=None, help="Demo users' password (default: 'demo').")
@click.option("--orders", "order_count", default=300, show_default=True, help="Orders to seed.")
@with_appcontext
def demo(port: int, host: str, password: str | None, order_count: int) -> None:
    """Migrate, seed and run web + worker + scheduler + embedded Redis; Ctrl-C stops all."""
    from portal.launcher import run_demo

    _refuse_in_production("demo")
    password = password or os.environ.get("DEMO_PASSWORD") or "demo"
    run_demo(current_app._get_current_object(), host, port, password, order_count)  # type: ignore[attr-defined]


@click.command("scheduler")
@click.option("--every", default=15.0, show_default=True, help="Seconds between ticks.")
@with_appcontext
def scheduler(every: float) -> None:
    """Run the scheduler: tracker syncs and periodic jobs (mail, backorders, audit check)."""
    from jobs.schedule import run_forever, stop_on_signals

    click.echo(f"scheduler ticking every {every:g} s")
    run_forever(every, stop_on_signals())


# Commands that serve no page and need no view's permissions: their app is built without the
# views and the REST API (``create_app(web=False)``), which makes them start sooner.
PAGELESS_COMMANDS = frozenset(
    {"audit", "db", "enqueue", "scheduler", "sheets", "stock", "worker", "xlwings"}
)


def _command_name(ctx: click.Context | None) -> str | None:
    """The name of the ``orderbridge`` command ``ctx`` runs (``sheets`` for ``sheets sync``)."""
    while ctx is not None and ctx.parent is not None and ctx.parent.parent is not None:
        ctx = ctx.parent
    return ctx.info_name if ctx is not None and ctx.parent is not None else None


def _create_app() -> Flask:
    """Build the app for a command that needs it; a settings problem is one line, no traceback."""
    from portal import create_app

    web = _command_name(click.get_current_context(silent=True)) not in PAGELESS_COMMANDS
    try:
        return create_app(web=web)
    except ConfigError as error:
        raise click.ClickException(str(error)) from None


# Commands whose modules are imported only when the command runs (or shows its own help):
# name → ("module:attribute", the short help `orderbridge --help` lists).
LAZY_COMMANDS = {
    "db": ("flask_migrate.cli:db", "Perform database migrations."),
    "sheets": ("portal.sync.cli:sheets", "Spreadsheet trackers and their two-way sync."),
    "stock": ("portal.stock_cli:stock", "Stock: goods receipts."),
    "import": (
        "portal.imports_cli:import_group",
        "Import a team's files: order history, customers, products, stock.",
    ),
    "report": ("portal.report_cli:report", "Reports: the weekly order-health workbook."),
    "xlwings": (
        "portal.sync.xlwings_cli:xlwings_group",
        "Sync from inside Excel: the xlwings client kit.",
    ),
}
PLUGIN_HELP = {  # the short help of Flask plugins' commands (entry points), read without them
    "fab": "FAB flask group commands",
    "limiter": "Flask-Limiter maintenance & utility commands",
}


class OrderbridgeGroup(FlaskGroup):
    """Flask's command group, listing its commands without building the app or importing them.

    Every Orderbridge command is added to the group itself (not to ``app.cli``), so
    ``orderbridge --help`` and each command's ``--help`` work in any environment — no
    ``SECRET_KEY`` needed; only running a command builds the app. Heavy command modules
    (:data:`LAZY_COMMANDS`, and plugin commands such as ``fab``) are imported when the command
    is looked up, so listing the commands imports neither Flask-AppBuilder nor the models.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy: dict[str, tuple[Callable[[], click.Command], str]] = {
            name: (functools.partial(_import_target, target), short)
            for name, (target, short) in LAZY_COMMANDS.items()
        }

    def _load_plugin_commands(self) -> None:
        """Note the plugins' commands (entry points) without importing them, as names."""
        if self._loaded_plugin_commands:
            return
        from importlib.metadata import entry_points

        for entry in entry_points(group="flask.commands"):
            if entry.name not in self.commands:
                self._lazy.setdefault(entry.name, (entry.load, PLUGIN_HELP.get(entry.name, "")))
        self._loaded_plugin_commands = True

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._load_plugin_commands()
        return sorted({*self.commands, *self._lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        self._load_plugin_commands()
        if name in self._lazy and name not in self.commands:
            self.add_command(self._lazy[name][0](), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list of ``--help``; commands not imported yet show their known help."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            command = self.commands.get(name)
            if command is None:
                rows.append((name, self._lazy[name][1]))
            elif not command.hidden:
                rows.append((name, command.get_short_help_str(limit)))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if command is not None and "--help" in rest:
            _show_help(ctx, name or "", command, rest)
        return name, command, rest


def _import_target(target: str) -> click.Command:
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _show_help(ctx: click.Context, name: str, command: click.Command, args: list[str]) -> None:
    """Print the help of the (sub)command that ``args`` name, and exit.

    Click runs a group's callback before its subcommand sees ``--help``, and Flask-Migrate's
    ``db`` group builds the app in its callback; walking down to the subcommand here first
    keeps ``orderbridge db upgrade --help`` free of the app (and of ``SECRET_KEY``).
    """
    while isinstance(command, click.Group) and args and not args[0].startswith("-"):
        ctx = click.Context(command, info_name=name, parent=ctx)
        sub = command.get_command(ctx, args[0])
        if sub is None:
            return  # an unknown subcommand: the normal path reports it
        name, command, args = args[0], sub, args[1:]
    command.make_context(name, args, parent=ctx)  # prints the help and exits


cli = OrderbridgeGroup(create_app=_create_app, help="Orderbridge order-management portal.")
for _command in (
    roles_group,
    audit_group,
    seed_demo,
    worker,
    enqueue_job,
    demo,
    scheduler,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``orderbridge`` console script."""
    # The interpreter's last garbage collection walks every object of the app (0.5-1.4 s on
    # a busy machine) and nothing needs it at exit: Ctrl-C stops the demo's processes sooner.
    atexit.register(gc.freeze)
    cli(prog_name="orderbridge")


if __name__ == "__main__":
    main()
