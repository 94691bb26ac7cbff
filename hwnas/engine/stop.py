"""A stop token for a running search (importing it loads nothing heavy, so the CLI can make one first)."""

from __future__ import annotations

import threading


class StopToken:
    """Asks a running search to stop after the current trial (as ``optuna.Study.stop`` does); the CLI sets it
    on Ctrl-C / SIGTERM, a notebook or another thread may set it too."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def stop(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()
