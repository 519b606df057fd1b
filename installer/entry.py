"""PyInstaller entry point: the frozen ``byod-agent`` runs exactly what ``python -m agent`` runs."""

import sys

from agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
