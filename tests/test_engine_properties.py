"""Property tests for the sync engine against a simple, position-free oracle.

Each example starts from a synced tracker (sheet == portal == base), then makes random edits
on both sides, sorts the rows, deletes rows, inserts blank-key rows, pastes duplicate rows,
adds records to the portal and drops some from the tracker's filter. One sync is run against
an in-memory sheet and portal (the services reject a negative quantity and the customer
"BAD"), and the result is checked cell by cell against what the rules say, keyed by record,
never by position. A second sync right after must write nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from sheets.engine import CreateResult, SyncPlan, UpdateResult, finalize, plan_sync
from sheets.grid import CellWrite
from sheets.trackers import Column, TrackerSpec
from sheets.values import normalize, to_cell

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

COLUMNS = (
    Column("Name", "name", "text", "both"),
    Column("Qty", "qty", "int", "both"),
    Column("Amount", "amount", "decimal", "both"),
    Column("Due", "due", "date", "both"),
    Column("Price", "price", "decimal", "portal"),
    Column("Memo", "memo", "text", "sheet"),
)
TYPES = {c.header: c.type for c in COLUMNS}
OWNER = {c.header: c.owner for c in COLUMNS}
FIELD = {c.header: c.field for c in COLUMNS}
HEADER_OF = {c.field: c.header for c in COLUMNS}
MAPPED = [c.header for c in COLUMNS]
ALL_HEADERS = ["Key", *MAPPED, "Status", "Extra"]
DEFAULT_PRICE = Decimal("9.99")
EPOCH = date(1899, 12, 30)


def spec_for(policy: str) -> TrackerSpec:
    return TrackerSpec("t", "order", "Key", "key", COLUMNS, "Status", policy, may_create=True)


# -- value pools (canonical values) and the many ways a sheet stores them ----------------------

VALUES = {
    "Name": st.sampled_from(["Acme", "00123", "7", "Zed Co", "BAD", None]),
    "Qty": st.one_of(st.none(), st.sampled_from([-1, -2]), st.integers(0, 9)),
    "Amount": st.one_of(
        st.none(), st.sampled_from([Decimal(x) for x in ("0", "1.5", "2.25", "10", "0.1")])
    ),
    "Due": st.one_of(st.none(), st.dates(date(2024, 1, 1), date(2026, 12, 31))),
    "Price": st.sampled_from([Decimal(x) for x in ("1", "12.5", "3.99")]),
    "Memo": st.sampled_from([None, "call", "fragile", "0042"]),
}
INVALID = {
    "Qty": ["abc", "7.5", "n/a"],
    "Amount": ["1,5", "x"],
    "Due": ["soon", "31/12/2025"],
    "Price": ["?"],
}


def raw_forms(header: str, v: Any) -> list[Any]:
    """Ways a user / backend may store canonical value ``v`` in a cell of this column."""
    t = TYPES[header]
    if v is None:
        return [None, ""]
    if t == "text":
        return [v, f" {v} "] + ([int(v)] if v.isdigit() and not v.startswith("0") else [])
    if t == "int":
        return [v, float(v), str(v), f"{v}.00", Decimal(v)]
    if t == "decimal":
        return [v, float(v), str(v), f"{v:.2f}"]
    if t == "date":
        serial = (v - EPOCH).days
        return [v, datetime(v.year, v.month, v.day), serial, float(serial), v.isoformat()]
    raise AssertionError(t)


@st.composite
def typed(draw: st.DrawFn, header: str, allow_invalid: bool = True) -> tuple[Any, Any]:
    """(canonical value or INVALID, raw cell value)."""
    if allow_invalid and header in INVALID and draw(st.integers(0, 9)) == 0:
        return ("INVALID", draw(st.sampled_from(INVALID[header])))
    v = draw(VALUES[header])
    return (v, draw(st.sampled_from(raw_forms(header, v))))


@dataclass
class Scenario:
    policy: str
    base: dict[str, dict[str, Any]]
    portal: dict[str, dict[str, Any]]
    rows: list[list[Any]]
    sheet_edits: dict[tuple[str, str], Any]
    portal_edits: dict[tuple[str, str], Any]
    deleted: set[str]
    dups: set[str]
    removed: set[str]
    new_rows: list[dict[str, tuple[Any, Any]]]
    new_records: dict[str, dict[str, Any]]
    before: dict[str, dict[str, Any]] = field(default_factory=dict)  # tag -> row dict


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    policy = draw(st.sampled_from(["flag", "flag", "portal_wins", "sheet_wins"]))
    n = draw(st.integers(1, 7))
    keys = [f"K{i}" for i in range(n)]
    base = {k: {h: draw(VALUES[h]) for h in MAPPED} for k in keys}
    order = draw(st.permutations(ALL_HEADERS))

    key_st = st.sampled_from(keys)
    sheet_edits: dict[tuple[str, str], Any] = {}
    raw_edits: dict[tuple[str, str], Any] = {}
    for k, h in draw(st.lists(st.tuples(key_st, st.sampled_from(MAPPED)), min_size=1, max_size=10)):
        sheet_edits[k, h], raw_edits[k, h] = draw(typed(h))
    portal_edits: dict[tuple[str, str], Any] = {}
    targets = draw(st.lists(st.tuples(key_st, st.sampled_from(MAPPED)), max_size=10))
    # the same cells edited on both sides: the interesting case for the merge
    targets += [cell for cell in sheet_edits if draw(st.booleans())]
    for k, h in targets:
        portal_edits[k, h] = draw(VALUES[h])
    deleted = draw(st.sets(key_st, max_size=2))
    dups = draw(st.sets(key_st, max_size=2)) - deleted
    removed = draw(st.sets(key_st, max_size=2))
    new_rows = [{h: draw(typed(h)) for h in MAPPED} for _ in range(draw(st.integers(0, 3)))]
    new_records = {
        f"N{i}": {h: draw(VALUES[h]) for h in MAPPED} for i in range(draw(st.integers(0, 2)))
    }

    # the sheet as the user left it, rows as dicts
    dict_rows: list[dict[str, Any]] = []
    for k in keys:
        if k in deleted:
            continue
        row = {h: draw(st.sampled_from(raw_forms(h, base[k][h]))) for h in MAPPED}
        row["Key"] = draw(st.sampled_from([k, f" {k} "]))
        for (ek, h), raw in raw_edits.items():
            if ek == k:
                row[h] = raw
        row["Extra"] = f"x-{k}"
        dict_rows.append(row)
        if k in dups:
            dict_rows.append({**row, "Extra": f"x-{k}-dup"})
    for i, nr in enumerate(new_rows):
        dict_rows.append({**{h: raw for h, (_, raw) in nr.items()}, "Extra": f"new-{i}"})
    dict_rows += [{} for _ in range(draw(st.integers(0, 2)))]  # blank rows in between
    dict_rows = draw(st.permutations(dict_rows))
    rows = [list(order)] + [[r.get(h) for h in order] for r in dict_rows]

    portal = {k: {**base[k]} for k in keys if k not in removed}
    for (k, h), v in portal_edits.items():
        if k in portal:
            portal[k][h] = v
    portal.update({k: dict(v) for k, v in new_records.items()})
    scenario = Scenario(
        policy, base, portal, rows, sheet_edits, portal_edits, deleted, dups, removed,
        new_rows, new_records,
    )  # fmt: skip
    scenario.before = {r["Extra"]: r for r in dict_rows if r.get("Extra")}
    return scenario


# -- the in-memory world: sheet + portal + services --------------------------------------------


def rejects(values: dict[str, Any]) -> str | None:
    if values.get("qty") is not None and values["qty"] < 0:
        return "quantity must not be negative"
    if values.get("name") == "BAD":
        return "customer BAD is on hold"
    return None


@dataclass
class World:
    spec: TrackerSpec
    base: dict[str, dict[str, Any]]
    portal: dict[str, dict[str, Any]]
    rows: list[list[Any]]
    created: int = 0
    deleted: set[str] = field(default_factory=set)  # kept out of the sheet, as the job does

    def sync(self) -> tuple[SyncPlan, list[CellWrite], set[str], set[int]]:
        visible = {k: v for k, v in self.portal.items() if k not in self.deleted}
        plan = plan_sync(self.spec, self.base, self.rows, visible)
        self.deleted.update(plan.deleted)
        results: list[UpdateResult | CreateResult] = []
        failed_updates: set[str] = set()
        failed_creates: set[int] = set()
        for u in plan.updates:
            assert u.key in self.portal
            error = rejects(u.changes)
            if error:
                failed_updates.add(u.key)
                results.append(UpdateResult(u.key, error))
                continue
            for f, v in u.changes.items():
                self.portal[u.key][HEADER_OF[f]] = v
            results.append(UpdateResult(u.key))
        for c in plan.creates:
            error = rejects(c.values)
            if error:
                failed_creates.add(c.row)
                results.append(CreateResult(c.row, error=error))
                continue
            self.created += 1
            key = f"C{self.created}"
            rec = {h: c.values.get(FIELD[h]) for h in MAPPED}
            rec["Price"] = DEFAULT_PRICE
            self.portal[key] = rec
            results.append(CreateResult(c.row, key, values=dict(rec)))
        result = finalize(plan, results)
        for w in result.writes:
            while len(self.rows) < w.row:
                self.rows.append([])
            row = self.rows[w.row - 1]
            row.extend([None] * (w.col - len(row)))
            row[w.col - 1] = w.value
        self.base = result.base
        return plan, result.writes, failed_updates, failed_creates


def norm(header: str, raw: Any) -> Any:
    return normalize(TYPES[header], raw)


def is_condition(status: Any) -> bool:
    return isinstance(status, str) and any(
        p in status for p in ("Error:", "Conflict:", "Not synced:")
    )


# -- the properties ------------------------------------------------------------------------------


@dataclass
class Synced:
    """The sheet after the sync, read by header and by the untouched "Extra" tag."""

    rows: list[list[Any]]
    last_used: int  # 0-based index of the last used row before the sync
    col: dict[str, int] = field(init=False)
    by_tag: dict[Any, list[Any]] = field(init=False)
    appended: list[list[Any]] = field(init=False)
    appended_keys: list[Any] = field(init=False)

    def __post_init__(self) -> None:
        header = self.rows[0]
        self.col = {h: header.index(h) for h in ALL_HEADERS}
        self.by_tag = {self.get(r, "Extra"): r for r in self.rows[1:] if self.get(r, "Extra")}
        self.appended = self.rows[self.last_used + 1 :]
        self.appended_keys = [self.get(r, "Key") for r in self.appended]

    def get(self, row: list[Any], h: str) -> Any:
        i = self.col[h]
        return row[i] if i < len(row) else None

    def appended_row(self, k: str) -> list[Any]:
        assert self.appended_keys.count(k) == 1
        return self.appended[self.appended_keys.index(k)]


@dataclass
class CellRule:
    """What the rules say about one cell: the sheet value, and whether the portal gets it."""

    cell: Any
    push: bool = False
    error: bool = False
    conflict: bool = False


def expected_cell(policy: str, h: str, b: Any, s: Any, p: Any) -> CellRule:
    """The oracle for one cell with base ``b``, sheet value ``s`` and portal value ``p``."""
    owner = OWNER[h]
    if s == "INVALID":
        return CellRule(p) if owner == "portal" else CellRule("INVALID", error=True)
    if owner == "portal":
        return CellRule(p)
    if owner == "sheet":
        return CellRule(s, push=s != p)
    if s == p:
        return CellRule(s)  # unchanged, or both changed to the same value
    if s != b and p != b:
        if policy == "flag":
            return CellRule(s, conflict=True)
        if policy == "portal_wins":
            return CellRule(p)
        return CellRule(s, push=True)
    if s != b:
        return CellRule(s, push=True)
    return CellRule(p)


def check_gone_record(sc: Scenario, k: str, world: World, out: Synced) -> None:
    """A record that left the tracker's filter: its rows say so and keep what they held."""
    if k not in sc.deleted:
        for tag in (f"x-{k}", f"x-{k}-dup"):
            if tag in out.by_tag:
                row = out.by_tag[tag]
                assert is_condition(out.get(row, "Status"))
                assert all(out.get(row, h) == sc.before[tag].get(h) for h in MAPPED)
    assert k not in world.portal


def check_duplicated_record(
    sc: Scenario, k: str, p_now: dict[str, Any], world: World, out: Synced
) -> None:
    """A key pasted twice: both rows say so and neither is applied."""
    for tag in (f"x-{k}", f"x-{k}-dup"):
        row = out.by_tag[tag]
        assert str(out.get(row, "Status")).startswith(f"Error: key {k} is in rows")
        assert all(out.get(row, h) == sc.before[tag].get(h) for h in MAPPED)
    assert world.portal[k] == p_now  # neither row applied
    assert k not in out.appended_keys


def check_merged_record(
    sc: Scenario,
    k: str,
    p_now: dict[str, Any],
    world: World,
    out: Synced,
    failed_updates: set[str],
) -> set[tuple[str, str]]:
    """A record in one sheet row: every cell as the rules say; the conflicts expected."""
    brow = sc.base[k]
    row = out.by_tag[f"x-{k}"]
    rules = {
        h: expected_cell(sc.policy, h, brow[h], sc.sheet_edits.get((k, h), brow[h]), p_now[h])
        for h in MAPPED
    }
    push = {h: rule.cell for h, rule in rules.items() if rule.push}
    error = any(rule.error for rule in rules.values())
    conflict = any(rule.conflict for rule in rules.values())
    expect_portal = dict(p_now)
    rejected = bool(push) and rejects({FIELD[h]: v for h, v in push.items()}) is not None
    if push and not rejected:
        expect_portal.update(push)
    assert (k in failed_updates) == rejected
    # no edit lost: the sheet holds either the merged value or what the user typed
    for h, rule in rules.items():
        got = out.get(row, h)
        if rule.cell == "INVALID":
            assert got == sc.before[f"x-{k}"][h]
        else:
            assert norm(h, got) == rule.cell, (k, h)
    assert world.portal[k] == expect_portal, k
    status = out.get(row, "Status")
    if error or rejected:
        assert "Error:" in status
    if conflict:
        assert "Conflict:" in status
    if not (error or rejected or conflict):
        assert not is_condition(status)
    return {(k, h) for h, rule in rules.items() if rule.conflict}


def check_records(
    sc: Scenario, world: World, out: Synced, failed_updates: set[str]
) -> set[tuple[str, str]]:
    """Every original record, by the rules, position-free; the conflicts expected."""
    expect_conflicts: set[tuple[str, str]] = set()
    for k, brow in sc.base.items():
        if k in sc.removed:
            check_gone_record(sc, k, world, out)
            continue
        p_now = {h: sc.portal_edits.get((k, h), brow[h]) for h in MAPPED}
        if k in sc.deleted:
            # the deletion is reported, the row is not appended again; nothing is deleted
            assert k not in out.appended_keys and k in world.deleted
            assert world.portal[k] == p_now
        elif k in sc.dups:
            check_duplicated_record(sc, k, p_now, world, out)
        else:
            expect_conflicts |= check_merged_record(sc, k, p_now, world, out, failed_updates)
    return expect_conflicts


def check_new_rows(sc: Scenario, world: World, out: Synced) -> list[Any]:
    """New portal records are appended once; blank-key rows create once. The created keys."""
    for k, rec in sc.new_records.items():
        row = out.appended_row(k)
        assert {h: norm(h, out.get(row, h)) for h in MAPPED} == rec
    created_keys = []
    for i, nr in enumerate(sc.new_rows):
        row = out.by_tag[f"new-{i}"]
        has_data = any(norm(h, raw) is not None for h, (v, raw) in nr.items() if v != "INVALID")
        has_data = has_data or any(v == "INVALID" for v, _ in nr.values())
        bad = any(v == "INVALID" and OWNER[h] != "portal" for h, (v, _) in nr.items())
        values = {FIELD[h]: v for h, (v, _) in nr.items() if OWNER[h] != "portal"}
        if not has_data:
            assert out.get(row, "Key") is None and out.get(row, "Status") is None
        elif bad or rejects(values):
            assert out.get(row, "Key") is None
            assert str(out.get(row, "Status")).startswith("Error:")
        else:
            key = out.get(row, "Key")
            created_keys.append(key)
            assert world.portal[key] == {**{HEADER_OF[f]: v for f, v in values.items()},
                                         "Price": DEFAULT_PRICE}  # fmt: skip
            assert norm("Price", out.get(row, "Price")) == DEFAULT_PRICE
    assert len(created_keys) == len(set(created_keys)) == world.created
    return created_keys


def record_events(
    sc: Scenario,
    plan: SyncPlan,
    out: Synced,
    expect_conflicts: set[tuple[str, str]],
    failed_updates: set[str],
    failed_creates: set[int],
    created_keys: list[Any],
) -> None:
    for name, happened in (
        ("conflict", bool(expect_conflicts)),
        ("failed update", bool(failed_updates)),
        ("applied update", any(k not in failed_updates for k in (u.key for u in plan.updates))),
        ("created", bool(created_keys)),
        ("failed create", bool(failed_creates)),
        ("duplicate", bool(sc.dups)),
        ("deleted row", bool(sc.deleted - sc.removed)),
        ("left filter", bool(sc.removed)),
        ("portal write", any(w.row <= out.last_used + 1 for w in plan.writes)),
    ):
        event(f"{name}: {happened}")


@settings(SETTINGS, max_examples=400)
@given(scenarios())
def test_one_sync_matches_the_oracle_and_a_second_sync_is_a_noop(sc: Scenario) -> None:
    spec = spec_for(sc.policy)
    world = World(
        spec, sc.base, {k: dict(v) for k, v in sc.portal.items()}, [list(r) for r in sc.rows]
    )
    n_before = len(world.rows)
    note(f"scenario: {sc!r}")
    plan, _, failed_updates, failed_creates = world.sync()

    # records missing from the sheet land below the last used row (blank rows may be reused)
    last_used = max([0, *(i for i, r in enumerate(sc.rows) if any(v not in (None, "") for v in r))])
    out = Synced(world.rows, last_used)
    assert all(out.get(r, "Extra") is None for r in out.appended)
    assert len(world.rows) >= n_before

    expect_conflicts = check_records(sc, world, out, failed_updates)
    assert set(plan.deleted) == sc.deleted - sc.removed
    if sc.policy == "flag":
        assert {(c.key, c.header) for c in plan.conflicts} == expect_conflicts
    else:
        assert plan.conflicts == []
    created_keys = check_new_rows(sc, world, out)

    # no record duplicated: one sheet row per record, except the pasted duplicates
    keys_in_sheet = [k for r in world.rows[1:] if (k := norm("Name", out.get(r, "Key")))]
    for k in world.portal:
        assert keys_in_sheet.count(k) == (2 if k in sc.dups else 0 if k in sc.deleted else 1), k
    assert len(world.portal) == (
        len(sc.base) - len(sc.removed) + len(sc.new_records) + len(created_keys)
    )
    # unknown column untouched
    assert sorted(filter(None, (out.get(r, "Extra") for r in world.rows[1:]))) == sorted(sc.before)
    record_events(sc, plan, out, expect_conflicts, failed_updates, failed_creates, created_keys)

    # -- a second sync right after writes nothing and only retries what failed ------------
    snapshot = [list(r) for r in world.rows]
    plan2, writes2, failed2, failed_creates2 = world.sync()
    assert writes2 == []
    assert world.rows == snapshot
    assert {u.key for u in plan2.updates} == failed_updates == failed2
    assert len(plan2.creates) == len(failed_creates) == len(failed_creates2)
    assert {(c.key, c.header) for c in plan2.conflicts} == expect_conflicts
    assert world.created == len(created_keys)


@SETTINGS
@given(
    st.dictionaries(
        st.from_regex(r"[A-Z]{2}-[0-9]{1,4}", fullmatch=True),
        st.fixed_dictionaries({h: VALUES[h] for h in MAPPED}),
        max_size=15,
    ),
    st.sampled_from(["flag", "portal_wins", "sheet_wins"]),
)
def test_first_sync_into_an_empty_tab_then_quiet(portal: dict, policy: str) -> None:
    world = World(spec_for(policy), {}, {k: dict(v) for k, v in portal.items()}, [])
    world.sync()
    assert world.rows[0][: len(MAPPED) + 2] == ["Key", *MAPPED, "Status"]
    assert sorted(r[0] for r in world.rows[1:]) == sorted(portal)
    assert world.base == portal
    plan, writes, _, _ = world.sync()
    assert writes == [] and plan.is_noop and plan.conflicts == []


@SETTINGS
@given(st.data())
def test_every_raw_form_normalises_to_the_same_value(data: st.DataObject) -> None:
    for h in MAPPED:
        v = data.draw(VALUES[h])
        raw = data.draw(st.sampled_from(raw_forms(h, v)))
        assert norm(h, raw) == v
        assert norm(h, norm(h, raw)) == v
        assert norm(h, to_cell(TYPES[h], v)) == v


@SETTINGS
@given(st.data())
def test_rows_sorted_any_way_plan_the_same_changes(data: st.DataObject) -> None:
    sc = data.draw(scenarios())
    spec = spec_for(sc.policy)
    plan_a = plan_sync(spec, sc.base, sc.rows, sc.portal)
    body = data.draw(st.permutations(sc.rows[1:]))
    plan_b = plan_sync(spec, sc.base, [sc.rows[0], *body], sc.portal)
    assert {(u.key, tuple(sorted(u.changes.items()))) for u in plan_a.updates} == {
        (u.key, tuple(sorted(u.changes.items()))) for u in plan_b.updates
    }
    assert {(c.key, c.header) for c in plan_a.conflicts} == {
        (c.key, c.header) for c in plan_b.conflicts
    }
    assert sorted(c.token for c in plan_a.creates) == sorted(c.token for c in plan_b.creates)
    assert finalize(plan_a).base == finalize(plan_b).base
    assert len(plan_a.writes) == len(plan_b.writes)


def test_deadline_free_helpers_are_sane() -> None:
    # raw_forms covers every type the tracker uses; guards the generators above
    assert raw_forms("Due", date(2025, 1, 2))[2] == (date(2025, 1, 2) - EPOCH).days
    assert raw_forms("Qty", 3)[3] == "3.00"
    assert timedelta(days=1)
