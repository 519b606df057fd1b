"""Idle cost: resident memory after the settle time and CPU use over the idle window.

Both apps run side by side on the same tray; memory and CPU include child processes (the agent's
first posture check spawns apt-get and friends, which must be over by the time we measure).
"""

from __future__ import annotations

import functools
import time

from bench.apps import cpu_seconds, launch, rss_bytes
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

KEYS = ("idle_rss_vs_minimal", "idle_cpu_percent")
MB = 1024 * 1024


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
    rows = [f"RSS after {settle:.0f} s: agent {rss['agent'] / MB:.1f} MB, "
            f"minimal {rss['minimal'] / MB:.1f} MB -> {r}",
            f"CPU over {window:.0f} s idle: agent {cpu['agent']:.3f} %, "
            f"minimal {cpu['minimal']:.3f} % (of one core)"]
    return Result("idle", {"idle_rss_vs_minimal": r,
                           "idle_cpu_percent": round(cpu["agent"], 3)}, rows)
