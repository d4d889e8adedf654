"""The actions of the service-levels area: an improvement action's status moves and its
measurement, and setting a metric's target (a form on the Service levels page)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import Schema, fields, validate

from portal.actions import Action
from portal.models import ImprovementAction, ImprovementStatus, ServiceLevelTarget
from portal.services import improvements, service_level_targets
from portal.services import service_levels as sl
from portal.services.base import Actor


class TargetForm(Schema):
    """A metric's target and amber limit, as typed (a rate as 0.95 or 95%)."""

    metric = fields.String(required=True, validate=validate.OneOf(list(sl.METRICS)))
    target = fields.String(required=True, validate=validate.Length(min=1, max=20))
    amber = fields.String(required=True, validate=validate.Length(min=1, max=20))


class ImprovementForm(Schema):
    """The improvement log's form (a Pareto bar fills in the problem and the cause)."""

    problem = fields.String(required=True)
    root_cause = fields.String(required=True)
    action = fields.String(required=True)
    owner = fields.String(required=True)
    due_date = fields.Date(required=True, error_messages={"invalid": "not a date (YYYY-MM-DD)"})
    metric = fields.String(validate=validate.OneOf(list(sl.METRICS)))
    cause_source = fields.String()
    cause_code = fields.String()


def _log(_: None, actor: Actor, body: dict[str, Any]) -> ImprovementAction:
    return improvements.improvements.create(body, actor)


def _set_target(_: None, actor: Actor, body: dict[str, Any]) -> service_level_targets.Target:
    return service_level_targets.set_target(body["metric"], body["target"], body["amber"], actor)


def _move(name: str, to: str) -> Action:
    return Action(
        name, ImprovementAction, lambda action, actor, _: improvements.move(action, to, actor)
    )


def _step(name: str, call: Callable[[ImprovementAction, Actor], Any]) -> Action:
    return Action(name, ImprovementAction, lambda action, actor, _: call(action, actor))


LOG_IMPROVEMENT = Action("create", ImprovementAction, _log, ImprovementForm, status=201)
SET_TARGET = Action("set_target", ServiceLevelTarget, _set_target, TargetForm)
START = _move("start", ImprovementStatus.IN_PROGRESS.value)
COMPLETE = _move("complete", ImprovementStatus.DONE.value)
DROP = _move("drop", ImprovementStatus.DROPPED.value)
REOPEN = Action(
    "reopen",
    ImprovementAction,
    lambda action, actor, _: improvements.move(
        action,
        ImprovementStatus.IN_PROGRESS.value
        if action.status == ImprovementStatus.DONE.value
        else ImprovementStatus.OPEN.value,
        actor,
    ),
)
MEASURE = _step("measure", improvements.measure)
IMPROVEMENT_ACTIONS = {
    "start": START,
    "complete": COMPLETE,
    "drop": DROP,
    "reopen": REOPEN,
    "measure": MEASURE,
}
