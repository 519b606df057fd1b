"""Per-user policy state: highest serial accepted per policy id, recent refusals, last good copy.

Lives in the user state directory (agent.core.paths.state_dir(); tests hand a temporary one). Every
write is atomic (temp file in the same directory, fsync, os.replace) so a crash or a second agent
process never leaves a half-written file. The serial table is merged (max) with what is on disk
just before each write, so two agent processes cannot lower a serial by racing.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agent.core.fsutil import atomic_write
from agent.core.messages import Message, msg
from agent.policy.errors import PolicyRefused

STATE_FILE = "policy-state.json"
CACHE_POLICY = "last-good-policy.toml"
MAX_REFUSALS = 5


@dataclass(frozen=True)
class Refusal:
    at: str  # ISO-8601 UTC
    source: str  # installed | cache | file | update
    path: str
    message: Message
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at, "source": self.source, "path": self.path,
                "key": self.message.key, "params": dict(self.message.params),
                "detail": self.detail}

    @staticmethod
    def from_json(d: dict[str, Any]) -> Refusal:
        params = {k: v for k, v in dict(d.get("params") or {}).items()
                  if isinstance(v, str | int | float)}
        return Refusal(str(d["at"]), str(d["source"]), str(d["path"]),
                       Message(str(d["key"]), params), str(d.get("detail", "")))


class PolicyState:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.file = directory / STATE_FILE

    def _read(self) -> dict[str, Any]:
        try:
            raw = self.file.read_bytes()
        except FileNotFoundError:
            return {"serials": {}, "refusals": []}
        except OSError as exc:
            raise self._unreadable(str(exc)) from exc
        try:
            doc = json.loads(raw.decode("utf-8"))
            serials = doc["serials"]
            if not isinstance(serials, dict) or not all(
                    isinstance(v, int) and not isinstance(v, bool) for v in serials.values()):
                raise ValueError("serials")
            refusals = doc.get("refusals", [])
            if not isinstance(refusals, list):
                raise ValueError("refusals")
        except (UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            # Fail closed: without the table a replayed old policy could not be recognised.
            raise self._unreadable(f"damaged: {exc}") from exc
        return {"serials": serials, "refusals": refusals}

    def _unreadable(self, detail: str) -> PolicyRefused:
        return PolicyRefused(msg("policy.refused.state_unreadable", path=str(self.file)),
                             f"{self.file}: {detail}")

    def highest_serial(self, policy_id: str) -> int:
        return int(self._read()["serials"].get(policy_id, 0))

    def record_accepted(self, policy_id: str, serial: int) -> None:
        doc = self._read()
        if doc["serials"].get(policy_id, 0) >= serial:
            return
        doc["serials"][policy_id] = serial
        self._write(doc)

    def record_refusal(self, refusal: Refusal) -> None:
        doc = self._read()
        doc["refusals"] = [refusal.to_json(), *doc["refusals"]][:MAX_REFUSALS]
        self._write(doc)

    def refusals(self) -> list[Refusal]:
        out = []
        for item in self._read()["refusals"]:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                out.append(Refusal.from_json(item))
        return out

    def _write(self, doc: dict[str, Any]) -> None:
        with contextlib.suppress(PolicyRefused):  # merge whatever another process wrote meanwhile
            disk = self._read()["serials"]
            for pid, serial in disk.items():
                doc["serials"][pid] = max(serial, doc["serials"].get(pid, 0))
        atomic_write(self.file, (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode())

    # The last good policy (installed, fetched or cached), kept so a refused one never replaces it.
    @property
    def cache_policy(self) -> Path:
        return self.directory / CACHE_POLICY

    @property
    def cache_sig(self) -> Path:
        return self.directory / (CACHE_POLICY + ".sig")

    def store_last_good(self, data: bytes, sig: bytes) -> None:
        if self.cache_policy.is_file() and self.cache_policy.read_bytes() == data \
                and self.cache_sig.is_file() and self.cache_sig.read_bytes() == sig:
            return
        atomic_write(self.cache_sig, sig)
        atomic_write(self.cache_policy, data)
