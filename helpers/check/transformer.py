"""Exercises of notebook 06 (Where LayerNorm sits in a Transformer)."""

from __future__ import annotations

__all__: list[str] = []
