"""BYOD Agent core. Never imports Qt: the CLI, the tray and the tests all drive this package.

``agent.__version__`` is computed on first use (PEP 562 module ``__getattr__``): reading it from
the installed distribution's metadata loads ``importlib.metadata`` (email, zipfile, csv, ...:
~10 MB and ~26 ms), which the resident tray only needs when the About dialog opens
(bench/README.md "Tray"). ``from agent import __version__`` still works, and computes it then.
"""

from __future__ import annotations

SOURCE_VERSION = "0.0.0+src"  # running from a source tree without install


def _read_version() -> str:
    from importlib import metadata  # noqa: PLC0415 (the point of this module: only on demand)

    try:
        return metadata.version("byod-agent")
    except metadata.PackageNotFoundError:
        return SOURCE_VERSION


def __getattr__(name: str) -> str:
    if name == "__version__":
        value = _read_version()
        globals()["__version__"] = value  # later reads are a plain attribute
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
