"""Wiring for production: the update configuration from the effective settings and the installer,
and the scheduled check the tray and ``byod-agent update check`` run.

The repository URL and channel come from the settings (managed first: agent/settings/managed.py);
the trusted root from ``resources/update/root.json`` that the installer build embeds; HTTPS is
verified against the OS trust store, plus ``resources/update/https-ca.pem`` when a city serves
its repository with its own CA.
"""

from __future__ import annotations

import logging
import ssl
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from agent.core.paths import resources_dir
from agent.settings.managed import Value
from agent.update import install, model, state
from agent.update.client import Result, UpdateConfig, _result, run_check, shipped_root
from agent.update.model import Outcome

log = logging.getLogger("agent.update")


def tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    extra = resources_dir() / "update" / "https-ca.pem"
    if extra.is_file():
        ctx.load_verify_locations(cafile=str(extra))
    return ctx


def configure(os_name: str, settings: Mapping[str, Value], *,
              executable: Path | None = None) -> UpdateConfig | Result:
    """The configuration, or the reason there is no self-update here (a Result, not checked)."""
    if settings.get("AutoUpdate") is False:
        return _result(Outcome.DISABLED, "AutoUpdate is off")
    url = str(settings.get("UpdateURL") or "")
    root = shipped_root()
    if not url or root is None:
        return _result(Outcome.NOT_CONFIGURED, "no UpdateURL or no resources/update/root.json")
    if os_name == "linux" and install.package_managed(executable or Path(sys.executable)):
        return _result(Outcome.PACKAGE_MANAGED, "installed by the package manager")
    channel = str(settings.get("UpdateChannel") or "general")
    if channel not in model.CHANNELS:
        channel = "general"
    return UpdateConfig(url=url, channel=channel, os_name=os_name, context=tls_context(),
                        root=root)


def check_now(os_name: str, settings: Mapping[str, Value]) -> Result:
    cfg = configure(os_name, settings)
    if isinstance(cfg, Result):
        status = state.load(state.status_path())
        status.last_check = datetime.now(UTC).isoformat(timespec="seconds")
        status.outcome = cfg.outcome.value
        status.channel = str(settings.get("UpdateChannel") or "general")
        try:
            state.save(state.status_path(), status)
        except OSError as exc:
            log.warning("update status not saved: %s", exc)
        return cfg
    return run_check(cfg)


def due(*, at_start: bool, now: datetime | None = None) -> bool:
    status = state.load(state.status_path())
    return model.check_due(now or datetime.now(UTC), status.last_check_time(), status.failed,
                           at_start=at_start)
