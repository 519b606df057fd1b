"""``byod-agent diag export`` over 50 MB of JSON-lines logs against ``zip -6`` of the same files.

The logs look like the agent's own (agent/core/logsetup.py): one JSON object per line with time,
level, logger and a message that carries the things the redactor must replace (user names, profile
paths, host names, addresses). They sit where the agent keeps its logs, in files of the size its
rotation writes (1 MiB), so the export reads them exactly as it would in the field.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.common import (
    REPO,
    Options,
    Result,
    median,
    need_tools,
    ratio,
    scratch_dir,
    scratch_env,
)

KEYS = ("export_vs_zip",)
FILE_BYTES = 1024 * 1024
MB = 1024 * 1024
_MESSAGES = (
    "check {check} finished: {status} in {ms} ms",
    "policy demo-{serial} verified (serial {serial}), next check in 15 min",
    "tunnel listening on 127.0.0.1:{port} for pc-{n:04d}.office.city.example via "
    "gw.city.example:443",
    "tunnel connection closed: up {up} bytes, down {down} bytes",
    "user yamada.taro opened /home/yamada.taro/.local/share/byod-agent/cert.pem from {ip}",
    "network changed: wlan0 {ip} gateway 192.168.{a}.1 mac 3c:22:fb:{a:02x}:{b:02x}:10",
    "EST renewal for CN=Yamada Taro at https://est.city.example/.well-known/est failed: "
    "timed out",
    "apt-get -s upgrade: {n} packages pending, {a} from Debian-Security",
)


def _line(rng: random.Random, when: datetime) -> str:
    msg = rng.choice(_MESSAGES).format(
        check=rng.choice(("os_updates", "firewall", "antivirus", "disk_encryption")),
        status=rng.choice(("pass", "fail", "unknown")), ms=rng.randint(1, 4000),
        serial=rng.randint(1, 40), port=rng.randint(30000, 60000), n=rng.randint(0, 9999),
        up=rng.randint(0, 10**9), down=rng.randint(0, 10**9),
        ip=f"192.168.{rng.randint(0, 255)}.{rng.randint(1, 254)}",
        a=rng.randint(0, 255), b=rng.randint(0, 255))
    return json.dumps({"time": when.isoformat(timespec="milliseconds"),
                       "level": rng.choice(("info", "info", "info", "warning", "error")),
                       "logger": rng.choice(("agent.posture", "agent.session.tunnel",
                                             "agent.policy", "ui.tray")),
                       "message": msg}, ensure_ascii=False)


def write_logs(log_dir: Path, total: int, seed: int = 9) -> list[Path]:
    """``agent.log``, ``agent.log.1``...: ``total`` bytes in rotation-sized files, newest first."""
    rng = random.Random(seed)
    log_dir.mkdir(parents=True, exist_ok=True)
    when = datetime(2025, 4, 1, tzinfo=UTC)
    count = max(1, total // FILE_BYTES)
    paths = [log_dir / ("agent.log" if i == 0 else f"agent.log.{i}") for i in range(count)]
    for path in reversed(paths):  # oldest first, as rotation would have written them
        lines, size = [], 0
        while size < min(FILE_BYTES, total):
            when += timedelta(milliseconds=rng.randint(10, 5000))
            line = _line(rng, when) + "\n"
            lines.append(line)
            size += len(line.encode())
        path.write_text("".join(lines), encoding="utf-8")
    return paths


def _timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600,
                          check=False, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited {proc.returncode}: {proc.stderr[-400:]}")
    return elapsed


def _breakdown(env: dict[str, str], files: list[Path]) -> str:
    """Where the export's time goes: the posture check it embeds, redaction, zip (in-process)."""
    code = (
        "import time,json,sys\n"
        "from pathlib import Path\n"
        "from agent.diagnostics import bundle\n"
        "from agent.diagnostics.redact import Redactor\n"
        "from agent.diagnostics.identity import local_identities\n"
        "from agent.posture.context import default_context\n"
        "from agent.posture.engine import run_posture\n"
        "t0=time.perf_counter(); report=run_posture(default_context()); t1=time.perf_counter()\n"
        "u,h=local_identities(); files=[Path(p) for p in sys.argv[1:]]\n"
        "pre=bundle.prepare(report, Redactor(user_names=u, host_names=h), log_files=files)\n"
        "t2=time.perf_counter(); data=bundle.build_zip(pre); t3=time.perf_counter()\n"
        "logs=[n for n in pre.files if n.startswith('logs/')]\n"
        "raw=''.join(f.read_text(encoding='utf-8') for f in files[:8]); r=Redactor(user_names=u,"
        " host_names=h); t4=time.perf_counter(); r.text(raw); t5=time.perf_counter()\n"
        "print(json.dumps({'posture':t1-t0,'prepare':t2-t1,'zip':t3-t2,'files':len(logs),"
        "'log_bytes':sum(len(pre.files[n]) for n in logs),'out':len(data),"
        "'redact_mb_per_s':len(raw.encode())/1048576/(t5-t4)}))\n")
    out = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", code,
                          *map(str, files)], env=env, cwd=REPO, capture_output=True, text=True,
                         timeout=600, check=True)
    b = json.loads(out.stdout.splitlines()[-1])
    return (f"  inside the export: posture check {b['posture']:.2f} s, collect+redact "
            f"{b['prepare']:.2f} s, zip {b['zip']:.2f} s; it takes {b['files']} log files, "
            f"{b['log_bytes'] / MB:.1f} MB after redaction -> {b['out'] / MB:.2f} MB bundle; "
            f"redaction alone redact_mb_per_s = {b['redact_mb_per_s']:.1f} (one compiled pass)")


def run(opts: Options) -> Result:
    need_tools("zip")
    total = opts.pick(50 * MB, 2 * MB)
    repeats = opts.pick(3, 1)
    with scratch_dir("export") as root:
        env = scratch_env(root)
        log_dir = Path(env["XDG_STATE_HOME"]) / "byod-agent" / "log"
        files = write_logs(log_dir, total)
        size = sum(p.stat().st_size for p in files)
        out = root / "out"
        out.mkdir()
        agent = [str(REPO / ".venv" / "bin" / "byod-agent"), "diag", "export", "--yes",
                 "--out", str(out), "--lang", "en"]
        zip_argv = ["zip", "-6", "-q", "-X", str(out / "logs.zip"),
                    *(p.name for p in files)]
        # As the tray runs: its evaluation worker saved the last result (issue 20 item 3), so an
        # export within 5 minutes reuses it. "cold": no saved evaluation, a new posture run.
        worker = [str(REPO / ".venv" / "bin" / "byod-agent"), "evaluate", "--wire"]
        last = Path(env["XDG_STATE_HOME"]) / "byod-agent" / "last-evaluation.json"
        exports, zips, colds = [], [], []
        for _ in range(repeats):
            (out / "logs.zip").unlink(missing_ok=True)
            zips.append(_timed(zip_argv, env, log_dir))
            last.unlink(missing_ok=True)
            colds.append(_timed(agent, env, REPO))
            _timed(worker, env, REPO)
            if not last.exists():
                raise RuntimeError("the evaluation worker saved no last evaluation")
            exports.append(_timed(agent, env, REPO))
        zip_size = (out / "logs.zip").stat().st_size
        bundles = sorted(out.glob("byod-diag-*"))
        bundle_size = bundles[-1].stat().st_size if bundles else 0
        detail = _breakdown(env, files)
    e, z = median(exports), median(zips)
    r = ratio(e, z)
    rows = [f"{size / MB:.0f} MB of logs in {len(files)} files: diag export {e:.2f} s "
            f"({bundle_size / MB:.2f} MB), zip -6 {z:.2f} s ({zip_size / MB:.2f} MB) "
            f"(median of {repeats}) -> {r}",
            f"  after the tray's worker evaluated (reused); with no saved evaluation (cold) "
            f"{median(colds):.2f} s -> {ratio(median(colds), z)}", detail]
    return Result("export", {"export_vs_zip": r}, rows)
