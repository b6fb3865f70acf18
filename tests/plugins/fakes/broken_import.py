"""A plugin whose import fails, like one with a missing dependency."""

from __future__ import annotations

raise ImportError("No module named 'fancy_dependency'")
