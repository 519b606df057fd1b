"""One update check: TUF refresh, the channel's index, download, release signature, install.

``run_check`` never raises for a reason a person should hear: every end is an ``Outcome`` with a
translatable message, the running version stays whenever anything fails, and the outcome is
written to the status file (About dialog, ``byod-agent update status``). Nothing starts while a
remote session runs (agent/session/active.py), checked before the first byte and again right
before the install step.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tuf.api import exceptions as tuf_errors
from tuf.ngclient import Updater, UpdaterConfig

from agent import __version__
from agent.core.messages import Message
from agent.core.paths import data_dir, resources_dir
from agent.session.active import session_active
from agent.update import install, model, state, verify
from agent.update.fetcher import PinnedFetcher
from agent.update.model import Choice, Outcome

log = logging.getLogger("agent.update")
MAX_ARTIFACT_BYTES = 1024 ** 3


@dataclass
class UpdateConfig:
    url: str  # the repository's base URL: <url>/metadata/, <url>/targets/
    channel: str
    os_name: str
    context: ssl.SSLContext
    root: bytes  # the trusted root.json shipped in the installer
    state_base: Path | None = None  # default: the per-user state dir
    install_base: Path | None = None  # default: the per-user data dir
    release_keys: Path | None = None  # default: resources/update/release-keys
    running_version: str = __version__
    deadline_s: float = 120.0
    session_busy: Callable[[], bool] = field(default=session_active)


@dataclass(frozen=True)
class Result:
    outcome: Outcome
    message: Message
    detail: str = ""  # English, for the log
    version: str | None = None  # the version offered or installed


def shipped_root() -> bytes | None:
    path = resources_dir() / "update" / "root.json"
    try:
        with path.open("rb") as fh:
            return fh.read(512_000)
    except OSError:
        return None


def classify(exc: Exception) -> Outcome:
    """Which attack or failure a TUF (or transport) exception stands for."""
    if isinstance(exc, tuf_errors.ExpiredMetadataError):
        return Outcome.EXPIRED
    if isinstance(exc, tuf_errors.BadVersionNumberError):  # incl. a replayed (older) version
        return Outcome.ROLLBACK
    if isinstance(exc, tuf_errors.UnsignedMetadataError):
        return Outcome.BAD_SIGNATURE
    if isinstance(exc, tuf_errors.LengthOrHashMismatchError):
        return Outcome.TAMPERED
    if isinstance(exc, tuf_errors.DownloadLengthMismatchError):
        return Outcome.TAMPERED
    if isinstance(exc, tuf_errors.SlowRetrievalError):  # before DownloadError: a subclass
        return Outcome.TOO_SLOW
    if isinstance(exc, tuf_errors.DownloadError | OSError):
        return Outcome.UNREACHABLE
    return Outcome.REFUSED


def _result(outcome: Outcome, detail: str = "", offered: str | None = None,
            **params: str | int) -> Result:
    return Result(outcome, model.outcome_message(outcome, **params), detail, offered)


class _Run:
    def __init__(self, cfg: UpdateConfig, work: Path) -> None:
        self.cfg = cfg
        self.work = work
        meta = state.update_dir(cfg.state_base) / "metadata"
        meta.mkdir(parents=True, exist_ok=True)
        base = cfg.url.rstrip("/")
        self.updater = Updater(str(meta), f"{base}/metadata/", str(work), f"{base}/targets/",
                               PinnedFetcher(cfg.context, deadline_s=cfg.deadline_s),
                               UpdaterConfig(app_user_agent=f"byod-agent/{__version__}"),
                               bootstrap=cfg.root)

    def fetch(self, path: str, max_bytes: int) -> Path:
        info = self.updater.get_targetinfo(path)
        if info is None:
            raise LookupError(path)
        if info.length > max_bytes:
            raise tuf_errors.RepositoryError(f"{path}: {info.length} bytes is over the limit")
        dest = self.work / path.replace("/", "_")
        return Path(self.updater.download_target(info, str(dest)))


def run_check(cfg: UpdateConfig, *, now: datetime | None = None) -> Result:
    """Check, and install when there is a newer verified release. Writes the status file."""
    now = now or datetime.now(UTC)
    status_file = state.status_path(cfg.state_base)
    status = state.load(status_file)
    result = _check(cfg, status)
    status.last_check = now.isoformat(timespec="seconds")
    status.outcome = result.outcome.value
    status.channel = cfg.channel
    if result.version is not None:
        status.offered = result.version
    if result.outcome is Outcome.INSTALLED and result.version is not None:
        status.highest_installed = result.version
    try:
        state.save(status_file, status)
    except OSError as exc:
        log.warning("update status not saved: %s", exc)
    log.info("update check: %s %s", result.outcome.value, result.detail)
    return result


def _check(cfg: UpdateConfig, status: state.Status) -> Result:
    if cfg.session_busy():
        return _result(Outcome.DEFERRED_SESSION, "a remote session runs")
    try:
        index_path = model.index_path(cfg.channel, cfg.os_name)
    except ValueError as exc:
        return _result(Outcome.NOT_CONFIGURED, str(exc))
    work = Path(tempfile.mkdtemp(prefix="byod-update-"))
    try:
        return _verified_install(cfg, status, work, index_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _verified_install(cfg: UpdateConfig, status: state.Status, work: Path,
                      index_path: str) -> Result:
    try:
        run = _Run(cfg, work)
        run.updater.refresh()
        try:
            index_file = run.fetch(index_path, model.MAX_INDEX_BYTES)
        except LookupError:
            return _result(Outcome.NO_RELEASE, index_path, channel=cfg.channel)
        index = model.parse_index(index_file.read_bytes(), cfg.os_name)
        choice = model.choose(index.version, cfg.running_version, status.highest_installed)
        if choice is Choice.CURRENT:
            return _result(Outcome.UP_TO_DATE, index.version, index.version,
                           version=cfg.running_version)
        if choice is Choice.OLDER:
            return _result(Outcome.ROLLBACK, f"offered {index.version}, running "
                           f"{cfg.running_version}, highest {status.highest_installed}",
                           index.version)
        rel = model.release_dir(cfg.channel, cfg.os_name, index.version)
        artifact = run.fetch(index.artifact_path(cfg.channel, cfg.os_name), MAX_ARTIFACT_BYTES)
        sums = run.fetch(f"{rel}/SHA256SUMS", verify.MAX_SUMS_BYTES).read_bytes()
        sig = run.fetch(f"{rel}/SHA256SUMS.sig", 4096).read_bytes()
    except LookupError as exc:
        return _result(Outcome.REFUSED, f"{exc} is not a signed target")
    except ValueError as exc:  # the signed index itself is unusable
        return _result(Outcome.REFUSED, f"index: {exc}")
    except (tuf_errors.RepositoryError, tuf_errors.DownloadError, OSError) as exc:
        outcome = classify(exc)
        if outcome is Outcome.TOO_SLOW:
            return _result(outcome, f"{type(exc).__name__}: {exc}"[:300],
                           seconds=f"{cfg.deadline_s:g}")
        return _result(outcome, f"{type(exc).__name__}: {exc}"[:300])
    try:
        key_id = verify.verify_release(artifact, index.artifact, sums, sig, cfg.release_keys)
    except verify.ReleaseRefused as exc:
        outcome = Outcome.TAMPERED if exc.reason == "tampered" else Outcome.BAD_SIGNATURE
        return _result(outcome, f"release signature: {exc.detail}", index.version)
    log.info("update %s verified (TUF, release key %s)", index.version, key_id)
    if cfg.session_busy():  # a session may have started while we downloaded
        return _result(Outcome.DEFERRED_SESSION, "a remote session started", index.version)
    if cfg.os_name != "linux":
        return _result(Outcome.UNSUPPORTED, f"no self-install on {cfg.os_name} yet",
                       index.version)
    try:
        install.install_archive(artifact, index.version, cfg.install_base or data_dir())
    except install.InstallError as exc:
        return _result(Outcome.INSTALL_FAILED, str(exc), index.version)
    return _result(Outcome.INSTALLED, str(cfg.install_base), index.version,
                   version=index.version)
