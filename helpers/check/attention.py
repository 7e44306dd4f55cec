"""Exercises of notebook 04 (Attention scaling)."""

from __future__ import annotations

__all__: list[str] = []
