"""The database's refusal of a change (an ``IntegrityError``) told in words, by field.

The driver's text holds the statement, its parameters and the driver's class names; none of
that may reach a user. :func:`describe` names the constraint's columns and what was broken
(already in use, required, refers to a missing record, breaks a rule) from PostgreSQL's
diagnostics or SQLite's message, and the unit of work logs the driver's text instead.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import CheckConstraint, Table
from sqlalchemy.exc import IntegrityError

from portal.extensions import db

UNIQUE, NOT_NULL, FOREIGN_KEY, CHECK = "23505", "23502", "23503", "23514"
_SQLITE = (
    (re.compile(r"UNIQUE constraint failed: (.+)"), UNIQUE),
    (re.compile(r"NOT NULL constraint failed: (.+)"), NOT_NULL),
    (re.compile(r"CHECK constraint failed: (.+)"), CHECK),
    (re.compile(r"FOREIGN KEY constraint failed()"), FOREIGN_KEY),
)


def _table(name: str | None) -> Table | None:
    return db.metadata.tables.get(name or "")


def _constraint_columns(table: Table | None, name: str) -> list[str]:
    """The columns of the constraint or unique index called ``name`` on ``table``."""
    if table is None or not name:
        return []
    for item in (*table.constraints, *table.indexes):
        if item.name != name:
            continue
        if isinstance(item, CheckConstraint):
            text = str(item.sqltext)
            return [c.name for c in table.columns if re.search(rf"\b{c.name}\b", text)]
        return [column.name for column in item.columns]
    # PostgreSQL's default names: <table>_<column>_key, <table>_<column>_fkey, _check
    core = re.sub(r"_(key|fkey|check|not_null)$", "", name.removeprefix(f"{table.name}_"))
    return [core] if core in table.columns else []


def _postgresql(orig: Any) -> tuple[str, list[str], str]:
    diag = orig.diag
    table = _table(diag.table_name)
    columns = [diag.column_name] if diag.column_name else []
    columns = columns or _constraint_columns(table, diag.constraint_name or "")
    detail = str(getattr(diag, "message_detail", "") or "")
    return orig.sqlstate or "", columns, detail


def _sqlite(orig: Any) -> tuple[str, list[str], str]:
    text = str(orig)
    for pattern, code in _SQLITE:
        match = pattern.search(text)
        if not match:
            continue
        found = match.group(1)
        if code == CHECK:
            names = [
                columns
                for table in db.metadata.tables.values()
                if (columns := _constraint_columns(table, found))
            ]
            return code, names[0] if names else [], ""
        return code, [part.strip().rpartition(".")[2] for part in found.split(",") if part], ""
    return "", [], ""


def _what(code: str, detail: str) -> str:
    if code == UNIQUE:
        return "is already in use"
    if code == NOT_NULL:
        return "is required"
    if code == FOREIGN_KEY:
        if "still referenced" in detail:
            return "is still referred to by other records"
        return "refers to a record that does not exist"
    if code == CHECK:
        return "is out of the allowed range"
    return "conflicts with existing data"


def describe(error: IntegrityError) -> tuple[str, dict[str, list[str]]]:
    """A message and field errors for ``error``, without SQL or driver text."""
    orig = error.orig
    if getattr(orig, "diag", None) is not None:
        code, columns, detail = _postgresql(orig)
    else:
        code, columns, detail = _sqlite(orig)
    what = _what(code, detail)
    if not columns:
        return f"The change conflicts with existing data: a value {what}.", {}
    names = ", ".join(columns)
    return (
        f"The change conflicts with existing data: {names} {what}.",
        {column: [what] for column in columns},
    )
