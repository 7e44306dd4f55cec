"""Exercises of notebook 05 (GPT-2's LayerNorm parameters)."""

from __future__ import annotations

__all__: list[str] = []
