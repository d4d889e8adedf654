"""The portal side of sheet sync: record kinds <-> tracker rows through the services.

``sheets/`` (engine, backends, emulator) knows nothing of the portal; this package maps each
kind of record to rows (:mod:`portal.sync.kinds`), applies the engine's plan through the
services (:mod:`portal.sync.adapters`), opens backends with the app's settings
(:mod:`portal.sync.backends`) and holds the ``orderbridge sheets`` commands.
"""

from __future__ import annotations

from portal.services import trackers
from portal.sync.kinds import KINDS


def register_kinds() -> None:
    """Give the tracker service the kinds it validates trackers against and resolves with."""
    for kind in KINDS.values():
        trackers.register_kind(kind)
