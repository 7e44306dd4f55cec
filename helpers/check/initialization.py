"""Exercises of notebook 01 (Initialization)."""

from __future__ import annotations

__all__: list[str] = []
