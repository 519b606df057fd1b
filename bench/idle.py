"""Idle cost: resident memory after the settle time and CPU use over the idle window.

Both apps run side by side on the same tray; memory and CPU include child processes (the agent's
first evaluation runs in a short-lived ``byod-agent evaluate`` worker that spawns apt-get and
friends, which must be over by the time we measure). Memory is reported as RSS (what the ratio
uses, as before) and USS (pages only this process holds: what quitting it would give back; shared
libraries such as Qt's count in RSS for every process that maps them, in USS for none).
"""

from __future__ import annotations

import functools
import time

import psutil

from bench.apps import cpu_seconds, family, launch, rss_bytes
from bench.common import (
    Options,
    Result,
    desktop,
    ratio,
    scratch_dir,
    scratch_env,
    visible_tray_icon,
)
from testkit.procs import stop, wait_for

KEYS = ("idle_rss_vs_minimal", "idle_uss_vs_minimal", "idle_cpu_percent")
MB = 1024 * 1024


def uss_bytes(pid: int) -> int:
    """Unique set size of the process and its live children (psutil ``memory_full_info``)."""
    total = 0
    for p in family(pid):
        try:
            total += p.memory_full_info().uss
        except psutil.NoSuchProcess:
            continue
    return total


def children(pid: int) -> int:
    return len(family(pid)) - 1


def run(opts: Options) -> Result:
    settle = opts.pick(30.0, 2.0)
    window = opts.pick(60.0, 3.0)
    with scratch_dir("idle") as root, desktop(root) as display:
        env = scratch_env(root, display)
        procs = {name: launch(name, env, root / f"{name}.log") for name in ("agent", "minimal")}
        try:
            for name, proc in procs.items():
                wait_for(functools.partial(visible_tray_icon, proc.pid, env), 30,
                         f"{name} tray icon")
            time.sleep(settle)
            rss = {name: rss_bytes(p.pid) for name, p in procs.items()}
            uss = {name: uss_bytes(p.pid) for name, p in procs.items()}
            kids = children(procs["agent"].pid)
            cpu0 = {name: cpu_seconds(p.pid) for name, p in procs.items()}
            t0 = time.monotonic()
            time.sleep(window)
            elapsed = time.monotonic() - t0
            cpu = {name: (cpu_seconds(p.pid) - cpu0[name]) / elapsed * 100
                   for name, p in procs.items()}
            for name, p in procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited during the idle window")
        finally:
            for p in procs.values():
                stop(p)
    r = ratio(rss["agent"], rss["minimal"])
    u = ratio(uss["agent"], uss["minimal"])
    rows = [f"RSS after {settle:.0f} s: agent {rss['agent'] / MB:.1f} MB, "
            f"minimal {rss['minimal'] / MB:.1f} MB -> {r}",
            f"USS after {settle:.0f} s: agent {uss['agent'] / MB:.1f} MB, "
            f"minimal {uss['minimal'] / MB:.1f} MB -> {u} "
            f"(agent children alive: {kids})",
            f"CPU over {window:.0f} s idle: agent {cpu['agent']:.3f} %, "
            f"minimal {cpu['minimal']:.3f} % (of one core)"]
    return Result("idle", {"idle_rss_vs_minimal": r, "idle_uss_vs_minimal": u,
                           "idle_cpu_percent": round(cpu["agent"], 3)}, rows)
