"""Pure tracker definitions: which record kind a tab holds, its key, mapped columns and policy.

A :class:`TrackerSpec` is what the sync engine needs to know about a tracker; the portal's
tracker model (backend, location, schedule, filter) builds one with :meth:`TrackerSpec.build`
or the constructor. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sheets.values import COLUMN_TYPES

OWNERS = ("portal", "sheet", "both")
CONFLICT_POLICIES = ("portal_wins", "sheet_wins", "flag")
RECORD_KINDS = ("orders", "order_lines", "stock_levels", "shipments", "disputes", "credit_memos")


def header_id(header: object) -> str:
    """How headers are matched: stripped, case-insensitive text (``None`` -> ``""``)."""
    if header is None:
        return ""
    return " ".join(str(header).split()).casefold()


@dataclass(frozen=True)
class Column:
    """One mapped column: sheet ``header`` <-> record ``field`` of a ``type``, owned by a side.

    ``owner``: ``"both"`` merges edits from either side; ``"portal"`` reverts sheet edits;
    ``"sheet"`` is never overwritten by the portal (portal edits are reverted from the sheet).
    """

    header: str
    field: str
    type: str = "text"
    owner: str = "both"

    def __post_init__(self) -> None:
        if not str(self.header).strip():
            raise ValueError("column header must not be blank")
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.header!r}: type must be one of {COLUMN_TYPES}")
        if self.owner not in OWNERS:
            raise ValueError(f"column {self.header!r}: owner must be one of {OWNERS}")


@dataclass(frozen=True)
class TrackerSpec:
    """What the sync engine knows about one tracker tab.

    The key column holds the business key (text, e.g. the order number); it is not listed in
    ``columns``. ``status_header`` names the column where the sync writes row messages.
    """

    name: str
    kind: str
    key_header: str
    key_field: str
    columns: tuple[Column, ...]
    status_header: str = "Sync status"
    conflict_policy: str = "flag"
    may_create: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "columns", tuple(self.columns))
        if self.conflict_policy not in CONFLICT_POLICIES:
            raise ValueError(f"conflict_policy must be one of {CONFLICT_POLICIES}")
        seen: set[str] = set()
        for header in (self.key_header, self.status_header, *(c.header for c in self.columns)):
            hid = header_id(header)
            if not hid:
                raise ValueError("key and status headers must not be blank")
            if hid in seen:
                raise ValueError(f"header {header!r} is used twice in tracker {self.name!r}")
            seen.add(hid)
        fields = [c.field for c in self.columns] + [self.key_field]
        if len(set(fields)) != len(fields):
            raise ValueError(f"a field is mapped twice in tracker {self.name!r}")

    @classmethod
    def build(
        cls,
        name: str,
        kind: str,
        key: tuple[str, str],
        columns: Iterable[Column | tuple[str, str, str, str] | tuple[str, str, str]],
        **options: object,
    ) -> TrackerSpec:
        """Convenience constructor: ``key=(header, field)``, columns as tuples or Columns."""
        cols = tuple(c if isinstance(c, Column) else Column(*c) for c in columns)
        return cls(name, kind, key[0], key[1], cols, **options)  # type: ignore[arg-type]

    @property
    def actor(self) -> str:
        """The audit actor for writes made on behalf of this tracker."""
        return f"sheet:{self.name}"

    def column(self, header: str) -> Column:
        """The mapped column with this header (matched like the sheet matches headers)."""
        hid = header_id(header)
        for col in self.columns:
            if header_id(col.header) == hid:
                return col
        raise KeyError(header)

    @property
    def headers(self) -> list[str]:
        """The header row ``orderbridge sheets init`` writes: key, mapped columns, status."""
        return [self.key_header, *(c.header for c in self.columns), self.status_header]
