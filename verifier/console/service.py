"""The console object: configuration, database, accounts, ingest, the scheduled job.

One ``Console`` serves the standalone console (``byod-verifier console``) and, in the verifier
process, the ingest hook (verifier/app.py calls ``ingest.after_attest`` after each attestation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine

from verifier.console import queries, retention
from verifier.console.accounts import Accounts
from verifier.console.config import ConsoleConfig
from verifier.console.ingest import Ingest
from verifier.console.security import KeyFileError, load_key

log = logging.getLogger("verifier.console")


class Console:
    def __init__(self, cfg: ConsoleConfig, engine: Engine, trust_dir: Path, *,
                 clock: Callable[[], float] = time.time, key: bytes | None = None,
                 oidc: Any = None) -> None:
        self.cfg = cfg
        self.engine = engine
        self.trust_dir = trust_dir
        self.clock = clock
        if key is None and cfg.key_file is not None and cfg.key_file.exists():
            key = load_key(cfg.key_file)
        self.accounts = Accounts(engine, cfg, key)
        self.ingest = Ingest(engine, cfg.zone)
        self.oidc = oidc

    def now(self) -> float:
        return self.clock()

    def job_once(self) -> retention.Result:
        """Roll up finished days, then apply retention (both idempotent)."""
        now = self.now()
        queries.roll_up(self.engine, now, self.cfg.zone)
        result = retention.run(self.engine, now, self.cfg.retention_days)
        if result.attestations or result.devices:
            log.info("retention: %d attestations, %d devices older than %d days deleted",
                     result.attestations, result.devices, self.cfg.retention_days)
        return result

    async def job_loop(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self.job_once)
            except Exception:
                log.exception("console job failed")
            await asyncio.sleep(self.cfg.retention_interval_seconds)


__all__ = ["Console", "KeyFileError"]
