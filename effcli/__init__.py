"""effdl: measured quality-vs-footprint frontiers from one Grow/Shrink/Improve recipe."""

from __future__ import annotations

__version__ = "0.1.0"
