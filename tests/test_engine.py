"""Example tests for the pure sync engine: one or more per rule of DESIGN.md section 5."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from sheets.base_codec import base_from_json, base_to_json
from sheets.engine import (
    MISSING,
    Conflict,
    CreateResult,
    RecordCreate,
    RecordUpdate,
    SyncPlan,
    UpdateResult,
    finalize,
    normalize_key,
    plan_sync,
    resolve_conflict,
)
from sheets.grid import CellWrite
from sheets.trackers import Column, TrackerSpec
from sheets.values import ValueParseError, decode, encode, normalize, same, to_cell

COLUMNS = (
    Column("Customer", "customer", "text"),
    Column("Qty", "quantity", "int"),
    Column("Unit price", "unit_price", "decimal", "portal"),
    Column("Due", "requested_date", "date"),
    Column("Notes", "notes", "text", "sheet"),
)
HEADER = ["Order No", "Customer", "Qty", "Unit price", "Due", "Notes", "Sync status"]


def make_spec(policy: str = "flag", may_create: bool = True) -> TrackerSpec:
    return TrackerSpec(
        name="orders-main",
        kind="order",
        key_header="Order No",
        key_field="number",
        columns=COLUMNS,
        status_header="Sync status",
        conflict_policy=policy,
        may_create=may_create,
    )


FIELD_TO_HEADER = {c.field: c.header for c in COLUMNS}


def record(customer: str, qty: int, price: str, due: date, notes: str | None = None) -> dict:
    return {
        "Customer": customer,
        "Qty": qty,
        "Unit price": Decimal(price),
        "Due": due,
        "Notes": notes,
    }


class World:
    """An in-memory sheet and portal; applies plans the way the sync job will."""

    def __init__(self, spec: TrackerSpec, portal: dict[str, dict[str, Any]]) -> None:
        self.spec = spec
        self.portal = portal
        self.sheet: list[list[Any]] = []
        self.base: dict[str, dict[str, Any]] = {}
        self.next_number = 9000
        self.reject: dict[str, str] = {}  # field value text -> reason; the services' validation

    # -- the services -------------------------------------------------------------------
    def _validate(self, changes: dict[str, Any]) -> str | None:
        qty = changes.get("quantity")
        if qty is not None and qty <= 0:
            return "quantity must be positive"
        if changes.get("customer") == "BLOCKED":
            return "customer BLOCKED is on credit hold"
        return None

    def apply_update(self, u: RecordUpdate) -> UpdateResult:
        error = self._validate(u.changes)
        if error:
            return UpdateResult(u.key, error)
        rec = self.portal[u.key]
        for f, v in u.changes.items():
            rec[FIELD_TO_HEADER[f]] = v
        return UpdateResult(u.key)

    def apply_create(self, c: RecordCreate) -> CreateResult:
        error = self._validate(c.values)
        if error:
            return CreateResult(c.row, error=error)
        self.next_number += 1
        key = f"SO-{self.next_number}"
        rec = {h: None for h in FIELD_TO_HEADER.values()}
        for f, v in c.values.items():
            rec[FIELD_TO_HEADER[f]] = v
        rec["Unit price"] = Decimal("9.99")  # portal-owned default
        self.portal[key] = rec
        return CreateResult(c.row, key, values=dict(rec))

    # -- one sync -----------------------------------------------------------------------
    def plan(self) -> SyncPlan:
        return plan_sync(self.spec, self.base, self.sheet, self.portal)

    def sync(self) -> tuple[SyncPlan, list[CellWrite]]:
        plan = self.plan()
        results: list[UpdateResult | CreateResult] = [self.apply_update(u) for u in plan.updates]
        results += [self.apply_create(c) for c in plan.creates]
        result = finalize(plan, results)
        self.write(result.writes)
        self.base = result.base
        return plan, result.writes

    def write(self, writes: list[CellWrite]) -> None:
        for w in writes:
            while len(self.sheet) < w.row:
                self.sheet.append([])
            row = self.sheet[w.row - 1]
            while len(row) < w.col:
                row.append(None)
            row[w.col - 1] = w.value
        width = max(len(r) for r in self.sheet)
        for row in self.sheet:  # a backend reads a rectangle
            row.extend([None] * (width - len(row)))

    # -- helpers --------------------------------------------------------------------------
    def col(self, header: str) -> int:
        return self.sheet[0].index(header)

    def row_of(self, key: str) -> list[Any]:
        rows = [r for r in self.sheet[1:] if r and normalize_key(r[self.col("Order No")]) == key]
        assert len(rows) == 1, rows
        return rows[0]

    def cell(self, key: str, header: str) -> Any:
        row = self.row_of(key)
        i = self.col(header)
        return row[i] if i < len(row) else None

    def set_cell(self, key: str, header: str, value: Any) -> None:
        row = self.row_of(key)
        i = self.col(header)
        while len(row) <= i:
            row.append(None)
        row[i] = value

    def status(self, key: str) -> str | None:
        return self.cell(key, "Sync status")

    def assert_quiet(self) -> None:
        """A sync right now plans nothing and writes nothing."""
        plan, writes = self.sync()
        assert writes == []
        assert plan.updates == [] and plan.creates == [] and plan.writes == []


def started_world(policy: str = "flag", may_create: bool = True) -> World:
    portal = {
        "SO-1001": record("ACME", 5, "12.50", date(2025, 3, 1)),
        "SO-1002": record("Globex", 10, "3.20", date(2025, 3, 2), "call first"),
        "SO-1003": record("Initech", 1, "100", date(2025, 3, 3)),
    }
    world = World(make_spec(policy, may_create), portal)
    world.sync()
    return world


# ------------------------------------------------------------------------------------------
# values: typed comparison as a sheet stores things
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [7, 7.0, "7", " 7 ", "7.00", Decimal("7.00"), Decimal("7")])
def test_int_and_decimal_forms_are_the_same_value(raw: object) -> None:
    assert normalize("int", raw) == 7
    assert type(normalize("int", raw)) is int
    assert normalize("decimal", raw) == Decimal(7)
    assert str(normalize("decimal", raw)) == "7"
    assert same("decimal", raw, Decimal("7.00"))


def test_decimal_from_float_uses_shortest_repr_and_money_text() -> None:
    assert normalize("decimal", 0.1) == Decimal("0.1")
    assert normalize("decimal", 12.5) == Decimal("12.5")
    assert normalize("decimal", "$1,234.50") == Decimal("1234.5")
    assert normalize("decimal", "-1,234") == Decimal("-1234")
    for bad in ("abc", "1,5", "NaN", "inf", True):
        with pytest.raises(ValueParseError):
            normalize("decimal", bad)


def test_text_keeps_leading_zeros_and_numbers_become_plain_text() -> None:
    assert normalize("text", "00123") == "00123"
    assert normalize("text", 123.0) == "123"
    assert normalize("text", 123) == "123"
    assert normalize("text", 1.5) == "1.5"
    assert normalize("text", "  spaced ") == "spaced"
    assert not same("text", "00123", 123)


@pytest.mark.parametrize("type_", ["text", "int", "decimal", "date", "datetime", "bool"])
def test_empty_string_is_none(type_: str) -> None:
    assert normalize(type_, "") is None
    assert normalize(type_, "   ") is None
    assert normalize(type_, None) is None


def test_dates_from_serials_datetimes_and_text() -> None:
    day = date(2025, 3, 1)
    serial = (day - date(1899, 12, 30)).days
    for raw in (day, datetime(2025, 3, 1), datetime(2025, 3, 1, 15, 30), serial, serial + 0.75):
        assert normalize("date", raw) == day
    assert normalize("date", "2025-03-01") == day
    assert normalize("date", "2025/03/01") == day
    assert normalize("date", "2025-03-01T10:00:00") == day
    for bad in ("tomorrow", "01/03/2025", -5, True):
        with pytest.raises(ValueParseError):
            normalize("date", bad)


def test_datetimes_are_aware_utc_and_compare_to_the_second() -> None:
    want = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    assert normalize("datetime", datetime(2025, 3, 1, 12, 0, 0)) == want
    assert normalize("datetime", datetime(2025, 3, 1, 12, 0, 0, 400_000)) == want
    assert normalize("datetime", "2025-03-01T12:00:00Z") == want
    assert normalize("datetime", "2025-03-01T14:00:00+02:00") == want
    serial = (date(2025, 3, 1) - date(1899, 12, 30)).days + 0.5
    assert normalize("datetime", serial) == want
    assert normalize("datetime", date(2025, 3, 1)) == datetime(2025, 3, 1, tzinfo=UTC)
    assert normalize("datetime", want).tzinfo is not None


def test_bools() -> None:
    for raw in (True, 1, "TRUE", "yes", "Y", "1"):
        assert normalize("bool", raw) is True
    for raw in (False, 0, 0.0, "false", "No", "n"):
        assert normalize("bool", raw) is False
    with pytest.raises(ValueParseError):
        normalize("bool", "maybe")


@pytest.mark.parametrize(("type_", "raw"), [("int", "abc"), ("int", 7.5), ("int", True)])
def test_invalid_input_raises_a_parse_error_with_a_readable_message(type_: str, raw: Any) -> None:
    with pytest.raises(ValueParseError, match="is not a valid whole number"):
        normalize(type_, raw)


def test_encode_decode_round_trip() -> None:
    values = {
        "text": "00123",
        "int": 7,
        "decimal": Decimal("12.5"),
        "date": date(2025, 3, 1),
        "datetime": datetime(2025, 3, 1, 12, tzinfo=UTC),
        "bool": True,
    }
    for type_, v in values.items():
        assert decode(type_, json.loads(json.dumps(encode(type_, v)))) == v
        assert normalize(type_, to_cell(type_, v)) == v


def test_tracker_spec_validates() -> None:
    with pytest.raises(ValueError):
        Column("Qty", "quantity", "float")
    with pytest.raises(ValueError):
        Column("Qty", "quantity", "int", "nobody")
    with pytest.raises(ValueError):
        make_spec("coin_toss")
    with pytest.raises(ValueError, match="used twice"):
        TrackerSpec("t", "order", "Order No", "number", (Column("order no", "x"),))
    spec = TrackerSpec.build("t", "order", ("Order No", "number"), [("Qty", "quantity", "int")])
    assert spec.column("qty").field == "quantity"
    assert spec.actor == "sheet:t"
    assert spec.headers == ["Order No", "Qty", "Sync status"]


# ------------------------------------------------------------------------------------------
# first sync, idempotence
# ------------------------------------------------------------------------------------------


def test_first_sync_on_an_empty_tab_writes_header_and_rows_then_is_quiet() -> None:
    world = started_world()
    assert world.sheet[0] == HEADER
    assert [r[0] for r in world.sheet[1:]] == ["SO-1001", "SO-1002", "SO-1003"]
    assert world.cell("SO-1001", "Unit price") == Decimal("12.5")
    assert world.base["SO-1002"]["Notes"] == "call first"
    world.assert_quiet()


def test_values_typed_differently_are_no_change() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Qty", "5")
    world.set_cell("SO-1002", "Qty", 10.0)
    world.set_cell("SO-1003", "Unit price", "100.00")
    world.set_cell("SO-1001", "Due", (date(2025, 3, 1) - date(1899, 12, 30)).days)
    world.set_cell("SO-1002", "Due", datetime(2025, 3, 2))
    world.set_cell("SO-1001", "Notes", "")
    plan = world.plan()
    assert plan.is_noop and plan.issues == []
    assert finalize(plan).writes == []


def test_first_sync_against_a_filled_sheet_without_base() -> None:
    spec = make_spec("flag")
    portal = {"SO-1": record("ACME", 5, "1", date(2025, 1, 1)), "SO-2": record("B", 1, "2", None)}
    sheet = [
        HEADER,
        ["SO-2", "B", 1, 2, date(2025, 2, 2), "typed", None],
        ["SO-1", "ACME", 6, None, None, None, None],
    ]
    plan = plan_sync(spec, {}, sheet, portal)
    # Due on SO-2: blank in portal, filled in the sheet -> sheet value applied;
    # Notes on SO-2: sheet-owned -> applied; Unit price SO-1 blank in sheet -> filled
    assert [(u.key, u.changes) for u in plan.updates] == [
        ("SO-2", {"requested_date": date(2025, 2, 2), "notes": "typed"})
    ]
    assert CellWrite(3, 4, Decimal(1)) in plan.writes
    assert CellWrite(3, 5, date(2025, 1, 1)) in plan.writes
    # Qty on SO-1 differs with no common ancestor: a conflict under "flag"
    assert [(c.key, c.header, c.base, c.sheet, c.portal) for c in plan.conflicts] == [
        ("SO-1", "Qty", None, 6, 5)
    ]


# ------------------------------------------------------------------------------------------
# per-cell three-way merge
# ------------------------------------------------------------------------------------------


def test_sheet_only_change_becomes_a_typed_record_update() -> None:
    world = started_world()
    world.set_cell("SO-1002", "Qty", "12")
    world.set_cell("SO-1002", "Due", "2025-04-01")
    plan = world.plan()
    assert plan.writes == [] and plan.conflicts == []
    (u,) = plan.updates
    assert u.key == "SO-1002"
    assert u.changes == {"quantity": 12, "requested_date": date(2025, 4, 1)}
    assert type(u.changes["quantity"]) is int
    assert u.expected == {"quantity": 10, "requested_date": date(2025, 3, 2)}
    assert u.row == 3
    world.sync()
    assert world.portal["SO-1002"]["Qty"] == 12
    assert world.base["SO-1002"]["Qty"] == 12
    world.assert_quiet()


def test_portal_only_change_is_written_to_the_right_cell_after_sorting_and_reordering() -> None:
    world = started_world()
    # the user sorts rows descending and moves the Qty column to the far right
    header, *rows = world.sheet
    rows.sort(key=lambda r: r[0], reverse=True)
    qi = header.index("Qty")
    world.sheet = [[*r[:qi], *r[qi + 1 :], r[qi]] for r in [header, *rows]]
    world.assert_quiet()
    world.portal["SO-1001"]["Qty"] = 7
    world.portal["SO-1003"]["Customer"] = "Initech GmbH"
    plan = world.plan()
    assert plan.updates == []
    assert plan.writes == [CellWrite(2, 2, "Initech GmbH"), CellWrite(4, 7, 7)]
    world.sync()
    assert world.cell("SO-1001", "Qty") == 7
    world.assert_quiet()


@pytest.mark.parametrize("policy", ["flag", "portal_wins", "sheet_wins"])
def test_both_changed_to_different_values_follows_the_policy(policy: str) -> None:
    world = started_world(policy)
    world.set_cell("SO-1001", "Qty", 8)
    world.portal["SO-1001"]["Qty"] = 9
    plan, _ = world.sync()
    if policy == "flag":
        assert plan.conflicts == [Conflict("SO-1001", "Qty", 5, 8, 9, 2, "quantity")]
        assert plan.updates == [] and plan.writes == []
        assert world.cell("SO-1001", "Qty") == 8 and world.portal["SO-1001"]["Qty"] == 9
        assert world.status("SO-1001").startswith("Conflict: Qty changed on both sides")
        assert world.base["SO-1001"]["Qty"] == 5  # not advanced: flagged again next time
        plan2, writes2 = world.sync()
        assert plan2.conflicts == plan.conflicts and writes2 == []
    elif policy == "portal_wins":
        assert plan.conflicts == [] and plan.updates == []
        assert world.cell("SO-1001", "Qty") == 9
        assert "portal value kept (sheet had 8)" in world.status("SO-1001")
        world.assert_quiet()
    else:
        assert plan.conflicts == [] and plan.writes == []
        assert world.portal["SO-1001"]["Qty"] == 8
        assert "sheet value applied (portal had 9)" in world.status("SO-1001")
        world.assert_quiet()


def test_both_changed_to_the_same_value_is_nothing_and_advances_the_base() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Qty", "9")
    world.portal["SO-1001"]["Qty"] = 9
    plan, writes = world.sync()
    assert plan.updates == [] and plan.conflicts == [] and writes == []
    assert world.base["SO-1001"]["Qty"] == 9


def test_resolving_a_flagged_conflict_writes_the_chosen_value_next_sync() -> None:
    world = started_world("flag")
    world.set_cell("SO-1001", "Qty", 8)
    world.portal["SO-1001"]["Qty"] = 9
    plan, _ = world.sync()
    (conflict,) = plan.conflicts
    # a Supervisor types 10: the service updates the record, the job stores the base
    world.portal["SO-1001"]["Qty"] = 10
    world.base = resolve_conflict(world.base, conflict)
    plan, _ = world.sync()
    assert plan.conflicts == []
    assert world.cell("SO-1001", "Qty") == 10
    assert world.status("SO-1001") is None  # the conflict message is cleared
    world.assert_quiet()


def test_portal_owned_column_edit_in_the_sheet_is_reverted_with_a_note() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Unit price", 1)
    plan, writes = world.sync()
    assert plan.updates == []
    assert CellWrite(2, 4, Decimal("12.5")) in writes
    assert "Unit price is kept by the portal; sheet edit 1 reverted" in world.status("SO-1001")
    world.assert_quiet()  # the note stays; nothing rewritten
    world.set_cell("SO-1001", "Unit price", "garbage")
    world.sync()
    assert world.cell("SO-1001", "Unit price") == Decimal("12.5")


def test_sheet_owned_column_is_never_overwritten_by_the_portal() -> None:
    world = started_world()
    world.portal["SO-1002"]["Notes"] = "changed in portal"
    plan, writes = world.sync()
    assert not any(w.col == 6 and w.row == 3 for w in writes if w.col != 7)
    assert [(u.key, u.changes) for u in plan.updates] == [("SO-1002", {"notes": "call first"})]
    assert world.cell("SO-1002", "Notes") == "call first"
    assert world.portal["SO-1002"]["Notes"] == "call first"
    assert "Notes is kept in the sheet" in world.status("SO-1002")
    world.assert_quiet()
    world.set_cell("SO-1002", "Notes", "call after 5pm")
    world.sync()
    assert world.portal["SO-1002"]["Notes"] == "call after 5pm"


def test_unknown_columns_and_cells_are_never_touched() -> None:
    world = started_world()
    for r in world.sheet:
        r.insert(2, "mine")
    world.sheet[0][2] = "My column"
    world.sheet.append([None, None, None, None, None, None, None, None, "scribble"])
    world.portal["SO-1001"]["Qty"] = 6
    world.portal["SO-4000"] = record("New", 2, "1", date(2025, 5, 5))
    _, writes = world.sync()
    assert all(w.col != 3 for w in writes)
    assert world.sheet[4][8] == "scribble"
    assert world.cell("SO-4000", "Customer") == "New"
    assert world.sheet.index(world.row_of("SO-4000")) == 5  # below the scribble
    world.assert_quiet()


# ------------------------------------------------------------------------------------------
# row identity: blank keys, duplicates, deleted rows
# ------------------------------------------------------------------------------------------


def test_blank_key_row_creates_a_record_and_gets_its_key_written_back() -> None:
    world = started_world(may_create=True)
    world.sheet.insert(2, [None, "Hooli", "3", 55, "2025-06-01", "rush", None])
    plan = world.plan()
    (create,) = plan.creates
    assert create.row == 3
    # a portal-owned cell typed in a new row is passed on (the glue keeps it only where a new
    # record may set that field, e.g. an order line's order and SKU); the record's value
    # replaces it in the cell
    assert create.values == {
        "customer": "Hooli",
        "quantity": 3,
        "unit_price": Decimal("55"),
        "requested_date": date(2025, 6, 1),
        "notes": "rush",
    }
    assert plan.key_write(3, "SO-9001") == CellWrite(3, 1, "SO-9001")
    world.sync()
    assert world.sheet[2][0] == "SO-9001"
    assert world.sheet[2][3] == Decimal("9.99")  # the record's value replaces the typed one
    assert world.status("SO-9001") == "Note: added as order record SO-9001"
    assert len(world.portal) == 4
    world.assert_quiet()
    assert len(world.portal) == 4  # never created twice


def test_create_tokens_are_stable_and_distinct_for_identical_rows() -> None:
    world = started_world()
    row = [None, "Hooli", 3, None, None, None, None]
    world.sheet += [list(row), list(row)]
    tokens = [c.token for c in world.plan().creates]
    assert len(set(tokens)) == 2
    world.sheet.insert(1, [None, "Other", 1, None, None, None, None])  # rows move
    assert [c.token for c in world.plan().creates][1:] == tokens


def test_blank_key_row_is_an_error_when_the_tracker_does_not_create() -> None:
    world = started_world(may_create=False)
    world.sheet.append([None, "Hooli", 3, None, None, None, None])
    plan, _ = world.sync()
    assert plan.creates == []
    assert world.sheet[4][6].startswith("Error: Order No is blank")
    world.sheet[4][0] = "SO-1003x"  # user types a key that does not exist
    world.sync()
    assert world.sheet[4][6].startswith("Not synced: no order record SO-1003x")


def test_failed_create_leaves_the_row_and_retries() -> None:
    world = started_world()
    world.sheet.append([None, "BLOCKED", 3, None, None, None, None])
    world.sync()
    assert world.sheet[4][0] is None
    assert world.sheet[4][6] == "Error: not created: customer BLOCKED is on credit hold"
    plan, writes = world.sync()
    assert len(plan.creates) == 1 and writes == []
    world.sheet[4][1] = "Unblocked"
    world.sync()
    assert world.sheet[4][0] == "SO-9001"
    assert world.sheet[4][6] == "Note: added as order record SO-9001"


def test_duplicate_keys_flag_both_rows_and_apply_neither() -> None:
    world = started_world()
    world.sheet.append(list(world.sheet[1]))  # pasted copy of SO-1001
    world.sheet[-1][2] = 99
    world.portal["SO-1001"]["Customer"] = "ACME Corp"
    plan, _ = world.sync()
    assert plan.updates == [] and plan.creates == []
    assert all(w.col == 7 for w in plan.writes) and plan.writes == []
    for r in (world.sheet[1], world.sheet[4]):
        assert r[6] == (
            "Error: key SO-1001 is in rows 2, 5: neither row is synced until one is removed"
        )
        assert r[1] == "ACME"
    assert world.portal["SO-1001"]["Qty"] == 5
    assert len(world.sheet) == 5  # not appended as a missing record either
    del world.sheet[4]
    world.sync()
    assert world.cell("SO-1001", "Customer") == "ACME Corp"
    assert world.status("SO-1001") is None  # the stale error is cleared
    world.assert_quiet()


def test_deleted_row_is_reported_not_appended_and_no_record_is_deleted() -> None:
    world = started_world()
    del world.sheet[1]
    world.portal["SO-5000"] = record("Newco", 4, "2", date(2025, 7, 1))
    plan, _ = world.sync()
    assert plan.updates == [] and len(world.portal) == 4
    assert plan.deleted == ["SO-1001"]
    assert [r[0] for r in world.sheet[1:]] == ["SO-1002", "SO-1003", "SO-5000"]
    assert "SO-1001" not in world.base


def test_row_whose_record_left_the_filter_is_left_alone() -> None:
    world = started_world()
    closed = world.portal.pop("SO-1003")
    world.set_cell("SO-1003", "Qty", 50)
    plan, _ = world.sync()
    assert plan.updates == []
    assert world.status("SO-1003").startswith("Not synced:")
    assert "SO-1003" in world.base  # kept: if it comes back, its edits still merge
    world.portal["SO-1003"] = closed
    plan, _ = world.sync()
    assert plan.updates[0].changes == {"quantity": 50}
    assert world.status("SO-1003") is None


# ------------------------------------------------------------------------------------------
# bad input never vanishes
# ------------------------------------------------------------------------------------------


def test_unparseable_value_is_a_row_error_left_as_typed_and_retried_once_fixed() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Qty", "abc")
    world.set_cell("SO-1001", "Customer", "ACME Ltd")
    world.portal["SO-1001"]["Qty"] = 6  # a portal change does not overwrite the typing
    plan, _ = world.sync()
    assert [u.changes for u in plan.updates] == [{"customer": "ACME Ltd"}]  # rest of the row
    assert world.cell("SO-1001", "Qty") == "abc"
    assert world.status("SO-1001") == "Error: Qty: 'abc' is not a valid whole number"
    assert world.base["SO-1001"]["Qty"] == 5
    _, writes = world.sync()
    assert writes == []  # same message: not rewritten
    world.set_cell("SO-1001", "Qty", "6")
    _, writes = world.sync()
    assert world.status("SO-1001") is None
    assert world.base["SO-1001"]["Qty"] == 6
    world.assert_quiet()


def test_failed_validation_keeps_the_cell_reports_why_and_retries() -> None:
    world = started_world()
    world.set_cell("SO-1002", "Qty", -3)
    world.set_cell("SO-1002", "Customer", "Globex Inc")
    plan, writes = world.sync()
    assert world.portal["SO-1002"]["Qty"] == 10 and world.portal["SO-1002"]["Customer"] == "Globex"
    assert world.cell("SO-1002", "Qty") == -3
    assert world.status("SO-1002") == "Error: not applied: quantity must be positive"
    assert world.base["SO-1002"]["Qty"] == 10 and world.base["SO-1002"]["Customer"] == "Globex"
    plan, writes = world.sync()
    assert len(plan.updates) == 1 and writes == []  # retried, nothing rewritten
    world.set_cell("SO-1002", "Qty", 4)
    world.sync()
    assert world.portal["SO-1002"]["Qty"] == 4
    assert world.portal["SO-1002"]["Customer"] == "Globex Inc"
    assert world.status("SO-1002") is None
    world.assert_quiet()


def test_results_missing_for_an_update_do_not_advance_the_base() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Qty", 6)
    plan = world.plan()
    result = finalize(plan, [])
    assert result.base["SO-1001"]["Qty"] == 5
    result = finalize(plan, [UpdateResult("SO-1001")])
    assert result.base["SO-1001"]["Qty"] == 6


def test_service_adjusted_values_are_written_back_at_once() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Customer", "acme")
    plan = world.plan()
    adjusted = {**world.portal["SO-1001"], "Customer": "ACME"}
    result = finalize(plan, [UpdateResult("SO-1001", values=adjusted)])
    assert CellWrite(2, 2, "ACME") in result.writes
    assert result.base["SO-1001"]["Customer"] == "ACME"


def test_crash_after_applying_to_the_portal_then_retry_converges() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Qty", 6)
    world.portal["SO-1002"]["Customer"] = "Globex 2"
    plan = world.plan()
    for u in plan.updates:
        world.apply_update(u)
    # killed here: nothing written to the sheet, base not stored. Retry:
    plan, _ = world.sync()
    assert plan.updates == [] and plan.conflicts == []
    assert world.cell("SO-1001", "Qty") == 6 and world.cell("SO-1002", "Customer") == "Globex 2"
    world.assert_quiet()


def test_crash_after_sheet_write_before_storing_base_then_retry_converges() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Qty", 6)
    world.portal["SO-1002"]["Customer"] = "Globex 2"
    old_base = world.base
    world.sync()
    world.base = old_base  # the base store was lost
    plan, writes = world.sync()
    assert plan.updates == [] and plan.conflicts == [] and writes == []
    world.assert_quiet()


# ------------------------------------------------------------------------------------------
# status column and sheet-level problems
# ------------------------------------------------------------------------------------------


def test_status_cell_user_text_is_kept_and_stale_errors_cleared_without_spurious_writes() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Sync status", "checked by Ann")
    world.set_cell("SO-1002", "Sync status", "Error: something old")
    _, writes = world.sync()
    assert writes == [CellWrite(3, 7, None)]
    assert world.status("SO-1001") == "checked by Ann"
    world.assert_quiet()


def test_missing_key_column_is_fatal_and_changes_nothing() -> None:
    world = started_world()
    world.sheet[0][0] = "Order number?"
    world.portal["SO-1001"]["Qty"] = 8
    plan = world.plan()
    assert plan.fatal and "Order No" in plan.fatal
    result = finalize(plan)
    assert result.writes == [] and result.base == world.base


def test_missing_or_duplicated_mapped_column_is_a_warning_and_its_base_is_kept() -> None:
    world = started_world()
    for r in world.sheet:
        del r[5]  # Notes
    world.sheet[0][1] = "Qty"  # "Customer" renamed to a duplicate of Qty
    plan = world.plan()
    assert any("'Notes' not found" in w for w in plan.warnings)
    assert any("'Qty' used twice" in w for w in plan.warnings)
    result = finalize(plan)
    assert result.writes == []
    assert result.base["SO-1002"]["Notes"] == "call first"


def test_header_empty_but_data_below_is_fatal() -> None:
    spec = make_spec()
    plan = plan_sync(spec, {}, [[None, None], ["x", 1]], {"SO-1": record("A", 1, "1", None)})
    assert plan.fatal and plan.writes == []


def test_base_json_round_trip_and_missing_marker() -> None:
    world = started_world()
    data = json.loads(json.dumps(base_to_json(world.spec, world.base)))
    assert data["SO-1001"]["Unit price"] == "12.5"
    assert base_from_json(world.spec, data) == world.base
    assert repr(MISSING) == "MISSING"


def test_plan_counts() -> None:
    world = started_world()
    world.set_cell("SO-1001", "Qty", "x")
    world.set_cell("SO-1002", "Qty", 2)
    counts = world.plan().counts()
    assert counts == {
        "rows_read": 3,
        "writes": 0,
        "updates": 1,
        "creates": 0,
        "conflicts": 0,
        "errors": 1,
    }


# ------------------------------------------------------------------------------------------
# speed
# ------------------------------------------------------------------------------------------


def test_fifty_thousand_rows_by_twelve_columns_plan_exactly_the_changes() -> None:
    """At tracker scale the plan holds the 300 changes and nothing else (timing: bench/)."""
    cols = (
        Column("Customer", "customer", "text"),
        Column("Qty", "qty", "int"),
        Column("Price", "price", "decimal", "portal"),
        Column("Due", "due", "date"),
        Column("Shipped at", "shipped_at", "datetime"),
        Column("Rush", "rush", "bool"),
        Column("Notes", "notes", "text", "sheet"),
        Column("PO", "po", "text"),
        Column("Amount", "amount", "decimal"),
        Column("Lines", "lines", "int"),
        Column("Carrier", "carrier", "text"),
        Column("Promised", "promised", "date"),
    )
    spec = TrackerSpec("big", "order", "Order No", "number", cols)
    rnd = random.Random(7)
    n = 50_000
    portal: dict[str, dict[str, Any]] = {}
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        portal[f"SO-{i:06d}"] = {
            "Customer": f"C{i % 977}",
            "Qty": i % 50 + 1,
            "Price": Decimal(f"{i % 1000}.25"),
            "Due": date(2024, 1, 1) + timedelta(days=i % 300),
            "Shipped at": t0 + timedelta(minutes=i),
            "Rush": i % 2 == 0,
            "Notes": None,
            "PO": f"{i:08d}",
            "Amount": Decimal(i) / 4,
            "Lines": i % 7,
            "Carrier": "UPS",
            "Promised": date(2024, 2, 1),
        }
    base = {k: {c.header: normalize(c.type, r[c.header]) for c in cols} for k, r in portal.items()}

    def as_read(c: Column, v: Any) -> Any:  # what calamine returns
        if v is None:
            return ""
        if c.type in ("int", "decimal"):
            return float(v)
        if c.type == "datetime":
            return v.replace(tzinfo=None)
        return v

    header = ["Order No", *(c.header for c in cols), "Sync status"]
    body = [[k, *(as_read(c, r[c.header]) for c in cols), ""] for k, r in portal.items()]
    rnd.shuffle(body)
    sheet = [header, *body]
    edited = rnd.sample(range(1, n + 1), 300)
    for r in edited[:150]:
        sheet[r][2] = float(sheet[r][2] + 100)
    keys = list(portal)
    for k in rnd.sample(keys, 150):
        portal[k] = {**portal[k], "Carrier": "DHL"}
    plan = plan_sync(spec, base, sheet, portal)
    assert len(plan.updates) == 150
    assert len({w.row for w in plan.writes}) == 150
