"""The improvement log: a problem, its root cause, the action on it, and what it moved.

An action names an owner and a due date, and may name the metric it should move: its value
the week before the action was logged is filled in from the metrics on creation, and its value
after from the last complete week when the action is completed (or on ``measure``). Actions
logged from a Pareto bar keep the bar's source and cause. Statuses move through
``states.IMPROVEMENTS`` (open → in progress → done, or dropped).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.extensions import db
from portal.models import ImprovementAction, ImprovementStatus, utcnow
from portal.security import IMPROVEMENTS
from portal.services import audit, states
from portal.services import service_levels as sl
from portal.services.base import Actor, RecordService, check_version, unit_of_work
from portal.services.service_levels_causes import SOURCES

FIELDS = ("problem", "root_cause", "action", "owner", "due_date", "metric")


def metric_value(key: str, week: sl.Period) -> Decimal | None:
    """The metric's headline value over ``week``, as stored on an action (4 places)."""
    value = sl.compute(key, week)[None].value
    return None if value is None else Decimal(str(value)).quantize(Decimal("0.0001"))


class ImprovementService(RecordService[ImprovementAction]):
    """Create and edit improvement actions; the metric's value before is measured on create."""

    model = ImprovementAction
    entity = "improvement_action"
    permission_view = IMPROVEMENTS
    creatable = (*FIELDS, "cause_source", "cause_code")
    editable = FIELDS

    def defaults(self) -> dict[str, Any]:
        return {"status": ImprovementStatus.OPEN.value}

    def build(self, data: Mapping[str, Any], actor: Actor, **preset: Any) -> ImprovementAction:
        preset = {"created_by": actor.name, "created_at": utcnow(), **preset}
        metric = data.get("metric")
        if isinstance(metric, str) and metric in sl.METRICS:
            week = sl.last_complete_week()
            preset.update(value_before=metric_value(metric, week), week_before=week.label)
        return super().build(data, actor, **preset)

    def validate(
        self, sess: Session, record: ImprovementAction, changed: set[str]
    ) -> dict[str, list[str]]:
        errors: dict[str, list[str]] = {}
        if record.metric is not None and record.metric not in sl.METRICS:
            errors["metric"] = [f"unknown metric; one of {', '.join(sl.METRICS)}"]
        if record.cause_source is not None and record.cause_source not in SOURCES:
            errors["cause_source"] = [f"one of {', '.join(SOURCES)}"]
        logged = record.created_at.date()
        if "due_date" in changed and isinstance(record.due_date, date) and record.due_date < logged:
            errors["due_date"] = ["is before the day the action was logged"]
        return errors


improvements = ImprovementService()


def measure(
    action: ImprovementAction,
    actor: Actor,
    week: sl.Period | None = None,
    expected_version: int | None = None,
) -> ImprovementAction:
    """Fill in the metric's value after (for ``week``, default the last complete week)."""
    improvements._require(actor, "can_write")
    check_version(action, expected_version)
    if action.metric is None:
        return action
    week = week or sl.last_complete_week()
    with unit_of_work():
        before = {"value_after": action.value_after, "week_after": action.week_after}
        action.value_after = metric_value(action.metric, week)
        action.week_after = week.label
        audit.record(
            actor,
            "improvement_action",
            action.id,
            "measure",
            before=before,
            after={"value_after": action.value_after, "week_after": action.week_after},
        )
    return action


def move(
    action: ImprovementAction, to: str, actor: Actor, expected_version: int | None = None
) -> ImprovementAction:
    """Move an action to status ``to``; completing it measures the metric's value after."""
    check_version(action, expected_version)
    with unit_of_work():
        states.transition(action, to, actor)
        if to == ImprovementStatus.DONE.value:
            measure(action, actor)
    return action


def open_actions(limit: int = 500) -> list[ImprovementAction]:
    """Actions not done or dropped, soonest due first."""
    finished = (ImprovementStatus.DONE.value, ImprovementStatus.DROPPED.value)
    query = (
        select(ImprovementAction)
        .where(ImprovementAction.status.not_in(finished))
        .order_by(ImprovementAction.due_date, ImprovementAction.id)
    )
    return list(db.session.execute(query.limit(limit)).scalars())
