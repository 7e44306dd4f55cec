"""Exercises of notebook 02 (Norm drift)."""

from __future__ import annotations

__all__: list[str] = []
