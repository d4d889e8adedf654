"""Who performs a write: the :class:`Actor` every service call names."""

from __future__ import annotations

from dataclasses import dataclass, field

SYSTEM_PREFIXES = ("job:", "sheet:", "system")


@dataclass(frozen=True)
class Actor:
    """Who performs a write, and through which channel.

    ``name`` is a username or a system actor (``job:<name>``, ``sheet:<tracker>``); ``source``
    is the channel (``web``, ``api``, ``cli``, ``job:<name>``, ``sheet:<tracker>``).
    ``permissions`` holds FAB ``(permission, view_menu)`` pairs of a human actor's roles.
    """

    name: str
    source: str
    user_id: int | None = None
    permissions: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    is_admin: bool = False

    @classmethod
    def system(cls, name: str) -> Actor:
        """A named system actor such as ``job:fill_backorders`` or ``sheet:open-orders``."""
        if not name.startswith(SYSTEM_PREFIXES):
            raise ValueError(f"system actor names start with job:, sheet: or system: {name!r}")
        return cls(name=name, source=name)

    @property
    def is_system(self) -> bool:
        return self.user_id is None and self.name.startswith(SYSTEM_PREFIXES)

    def can(self, permission: str, view_menu: str) -> bool:
        """Whether this actor holds ``permission`` on ``view_menu`` (system actors always do)."""
        return self.is_system or self.is_admin or (permission, view_menu) in self.permissions
