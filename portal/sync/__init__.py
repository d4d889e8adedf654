"""The portal side of sheet sync: record kinds <-> tracker rows through the services.

``sheets/`` (engine, backends, emulator) knows nothing of the portal; this package maps each
kind of record to rows (:mod:`portal.sync.kinds`), applies the engine's plan through the
services (:mod:`portal.sync.adapters`), opens backends with the app's settings
(:mod:`portal.sync.backends`) and holds the ``orderbridge sheets`` commands.
"""

from __future__ import annotations

from portal.services import trackers
from portal.sync.kinds import KINDS
from portal.sync.team_keys import TEAM_KINDS


def register_kinds() -> None:
    """Give the tracker service the kinds it validates trackers against and resolves with
    (and their variants keyed on the team's own references)."""
    for kind in KINDS.values():
        trackers.register_kind(kind)
    for kind in TEAM_KINDS.values():
        trackers.register_kind(kind, variant=True)
