"""Service-level records: metric targets, the improvement log and the weekly reports made.

Targets override the defaults of ``portal.services.service_levels.METRICS``; snapshots keep
closed weeks' figures as first reported; kept days (``ServiceLevelDay`` and its figures,
duration histograms and causes) hold each closed UTC day's sums, recomputed when the day's
records change (``portal.services.service_levels_days``); improvement
actions tie a root cause (a Pareto bar) to the action meant to fix it and the metric it should
move; each weekly order-health workbook made is kept for download. Records change only through
``portal.services.service_level_targets``, ``improvements`` and ``weekly_report``.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from flask_appbuilder.models.sqla import Model
from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.core import UTCDateTime, Versioned, utcnow

METRIC_VALUE = Numeric(14, 4)  # a rate (0..1), days, a count or a value


class ImprovementStatus(enum.StrEnum):
    """Improvement actions: open → in progress → done (or dropped)."""

    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    DROPPED = "dropped"


class ServiceLevelTarget(Versioned, Model):
    """The target of one metric and the limit between amber and red, set in the portal."""

    __tablename__ = "service_level_target"
    id: Mapped[int] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    target: Mapped[Decimal] = mapped_column(METRIC_VALUE, nullable=False)
    amber: Mapped[Decimal] = mapped_column(METRIC_VALUE, nullable=False)
    updated_by: Mapped[str] = mapped_column(String(120), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    def __repr__(self) -> str:
        return f"{self.metric}: {self.target}"


class ImprovementAction(Versioned, Model):
    """One entry of the improvement log: a problem, its root cause and the action on it."""

    __tablename__ = "improvement_action"
    id: Mapped[int] = mapped_column(primary_key=True)
    problem: Mapped[str] = mapped_column(String(200), nullable=False)
    root_cause: Mapped[str] = mapped_column(String(200), nullable=False)
    # the Pareto bar it came from (source and cause code), when it did
    cause_source: Mapped[str | None] = mapped_column(String(20))
    cause_code: Mapped[str | None] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(Text, nullable=False)
    owner: Mapped[str] = mapped_column(String(120), nullable=False)
    due_date: Mapped[date] = mapped_column(Date, nullable=False)
    status: Mapped[str] = mapped_column(
        String(12), nullable=False, default=ImprovementStatus.OPEN.value, index=True
    )
    metric: Mapped[str | None] = mapped_column(String(40))
    value_before: Mapped[Decimal | None] = mapped_column(METRIC_VALUE)
    week_before: Mapped[str | None] = mapped_column(String(8))
    value_after: Mapped[Decimal | None] = mapped_column(METRIC_VALUE)
    week_after: Mapped[str | None] = mapped_column(String(8))
    created_by: Mapped[str] = mapped_column(String(120), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"IA-{self.id}: {self.problem}"


class ServiceLevelSnapshot(Model):
    """One metric's figure for one closed ISO week, kept so trends need not recompute it.

    Written once per (metric, week) by ``service_levels_snapshots.freeze`` when the week has
    been closed for a grace period; never changed afterwards.
    """

    __tablename__ = "service_level_snapshot"
    id: Mapped[int] = mapped_column(primary_key=True)
    metric: Mapped[str] = mapped_column(String(40), nullable=False)
    week: Mapped[date] = mapped_column(Date, nullable=False)
    num: Mapped[int] = mapped_column(BigInteger, nullable=False)
    den: Mapped[int] = mapped_column(BigInteger, nullable=False)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2), nullable=False)
    median: Mapped[Decimal | None] = mapped_column(METRIC_VALUE)
    p90: Mapped[Decimal | None] = mapped_column(METRIC_VALUE)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (UniqueConstraint("metric", "week", name="uq_service_level_snapshot"),)


class ServiceLevelDay(Model):
    """A closed UTC day whose service-level sums are kept, or must be (re)computed.

    ``stale`` is set (in the same transaction) whenever a record behind one of the day's facts
    changes; ``computed_at`` is when its sums were last kept (None: never).
    """

    __tablename__ = "service_level_day"
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    stale: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    computed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ServiceLevelDayFigure(Model):
    """One metric's sums over the facts of one kept day (days with no fact have no row)."""

    __tablename__ = "service_level_day_figure"
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    num: Mapped[int] = mapped_column(BigInteger, nullable=False)
    den: Mapped[int] = mapped_column(BigInteger, nullable=False)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(16, 2), nullable=False)

    __table_args__ = (Index("ix_service_level_day_figure_day", "day"),)


class ServiceLevelDayValue(Model):
    """A duration metric's histogram on one kept day: how many facts took ``value`` days."""

    __tablename__ = "service_level_day_value"
    metric: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    value: Mapped[int] = mapped_column(Integer, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_service_level_day_value_day", "day"),)


class ServiceLevelDayCause(Model):
    """Problems of one kept day by source and cause (the root-cause Pareto's counts).

    ``since`` is the ship date of late deliveries that arrived before they shipped (null
    otherwise): such a problem counts only in periods that reach that ship date.
    """

    __tablename__ = "service_level_day_cause"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date, nullable=False)
    source: Mapped[str] = mapped_column(String(20), nullable=False)
    cause: Mapped[str] = mapped_column(String(200), nullable=False)
    since: Mapped[date | None] = mapped_column(Date)
    count: Mapped[int] = mapped_column(BigInteger, nullable=False)

    __table_args__ = (Index("ix_service_level_day_cause_day", "day"),)


class ServiceLevelReport(Model):
    """A weekly order-health workbook as it was made, kept for download."""

    __tablename__ = "service_level_report"
    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(8), nullable=False)
    made_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    made_by: Mapped[str] = mapped_column(String(120), nullable=False)
    channel: Mapped[str] = mapped_column(String(20), nullable=False)
    filename: Mapped[str] = mapped_column(String(120), nullable=False)
    size: Mapped[int] = mapped_column(Integer, nullable=False)
    content: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    mailed_to: Mapped[str | None] = mapped_column(String(1000))

    __table_args__ = (Index("ix_service_level_report_week", "week"),)

    def __repr__(self) -> str:
        return self.filename


__all__ = [
    "METRIC_VALUE",
    "ImprovementAction",
    "ImprovementStatus",
    "ServiceLevelDay",
    "ServiceLevelDayCause",
    "ServiceLevelDayFigure",
    "ServiceLevelDayValue",
    "ServiceLevelReport",
    "ServiceLevelSnapshot",
    "ServiceLevelTarget",
]
