"""The record kinds trackers can hold, by name."""

from __future__ import annotations

from portal.sync.base import Kind
from portal.sync.credit_memos import CreditMemosKind
from portal.sync.disputes import DisputesKind
from portal.sync.order_lines import OrderLinesKind
from portal.sync.orders import OrdersKind
from portal.sync.shipments import ShipmentsKind
from portal.sync.stock_levels import StockLevelsKind
from portal.sync.stock_receipts import StockReceiptsKind
from portal.sync.team_keys import TEAM_KINDS
from sheets.trackers import TrackerSpec

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        OrdersKind(),
        OrderLinesKind(),
        StockLevelsKind(),
        StockReceiptsKind(),
        ShipmentsKind(),
        DisputesKind(),
        CreditMemosKind(),
    )
}


def get_kind(name: str) -> Kind:
    """The kind named ``name``; ``ValueError`` for kinds no tracker can hold yet."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(
            f"trackers of {name.replace('_', ' ')} are not supported yet "
            f"(supported: {', '.join(KINDS)})"
        ) from None


def kind_for(spec: TrackerSpec) -> Kind:
    """The kind a tracker holds, keyed as the tracker is (its key field may be the team's
    own reference: :mod:`portal.sync.team_keys`)."""
    return TEAM_KINDS.get((spec.kind, spec.key_field)) or get_kind(spec.kind)
