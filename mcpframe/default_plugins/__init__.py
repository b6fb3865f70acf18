"""mcpframe's built-in plugins.

Each module here is an ordinary plugin, shaped exactly like a third-party one (a module with
``@hookimpl`` functions) and declared as an entry point under ``[project.entry-points.mcpframe]``
in ``pyproject.toml``; nothing imports them directly. A test keeps the two lists equal.
"""
