"""Qt widget tests run offscreen: set before any QApplication exists, or Qt aborts pytest."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"
