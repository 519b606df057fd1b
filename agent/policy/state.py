"""Per-user policy state: highest serial accepted, recent refusals, the last good copies.

Both the serial table and the last good copies are kept **per trust anchor and policy id**
(``<key_id>/<id>``; ``last-good/<key_id>/<id>.toml``): a DEMO build run once by the same user can
neither overwrite the city's copy nor raise the city's serial (issue 16: the stranded PC). Serials
recorded by earlier agents under the bare id still count (the higher of the two).

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
CACHE_POLICY = "last-good-policy.toml"  # written by agents before per-anchor copies (still read)
CACHE_DIR = "last-good"
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

    def highest_serial(self, policy_id: str, key_id: str = "") -> int:
        serials = self._read()["serials"]
        scoped = int(serials.get(f"{key_id}/{policy_id}", 0)) if key_id else 0
        return max(scoped, int(serials.get(policy_id, 0)))

    def record_accepted(self, policy_id: str, serial: int, key_id: str = "") -> None:
        key = f"{key_id}/{policy_id}" if key_id else policy_id
        doc = self._read()
        if doc["serials"].get(key, 0) >= serial:
            return
        doc["serials"][key] = serial
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

    # The last good policy per trust anchor and id (installed, fetched or cached), kept so a
    # refused one, or one of another trust anchor, never replaces it.
    @property
    def legacy_cache(self) -> Path:
        return self.directory / CACHE_POLICY

    def cache_policy(self, key_id: str, policy_id: str) -> Path:
        # key_id is 16 hex digits and policy_id matches [a-z0-9][a-z0-9._-]*: safe file names
        return self.directory / CACHE_DIR / key_id / f"{policy_id}.toml"

    def cached_copies(self, key_ids: set[str] | None = None) -> list[Path]:
        """Every kept copy, the legacy one last; only those of ``key_ids`` when given."""
        out: list[Path] = []
        root = self.directory / CACHE_DIR
        if root.is_dir():
            for sub in sorted(root.iterdir()):
                if sub.is_dir() and (key_ids is None or sub.name in key_ids):
                    out += sorted(p for p in sub.glob("*.toml") if p.is_file())
        if self.legacy_cache.is_file():
            out.append(self.legacy_cache)
        return out

    def store_last_good(self, data: bytes, sig: bytes, key_id: str, policy_id: str) -> None:
        path = self.cache_policy(key_id, policy_id)
        sig_file = path.with_name(path.name + ".sig")
        if path.is_file() and path.read_bytes() == data \
                and sig_file.is_file() and sig_file.read_bytes() == sig:
            return
        atomic_write(sig_file, sig)
        atomic_write(path, data)
