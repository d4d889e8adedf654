"""Two-way sync models: trackers, their base snapshots, sync runs and conflicts."""

__all__: list[str] = []
