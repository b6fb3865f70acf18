from __future__ import annotations

from mcpframe.cli import main

if __name__ == "__main__":
    main()
