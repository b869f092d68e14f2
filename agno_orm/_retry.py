"""Waiting between attempts: the one back-off of every bounded retry in this package."""

from __future__ import annotations

import random

from agno_orm._greenlets import sleep

__all__ = ["pause"]


def pause(attempt: int, *, base: float = 0.01, cap: float = 0.5) -> None:
    """Sleep before attempt `attempt + 1`: exponential in `attempt` (from 1), capped, with full jitter,
    so writers that collided do not collide again in step. In an async storage's operation it
    waits without blocking the event loop (`_greenlets.sleep`)."""
    sleep(random.uniform(0, min(cap, base * 2 ** min(attempt, 16))))
