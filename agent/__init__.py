"""BYOD Agent core. Never imports Qt: the CLI, the tray and the tests all drive this package."""

from importlib import metadata

try:
    __version__ = metadata.version("byod-agent")
except metadata.PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0+src"
