"""Process start to tray icon visible: ``byod-agent tray`` against the minimal PySide6 tray app.

Same X display, same trayer, the two apps interleaved run by run so background load hits both;
the first run of each is a warm-up (cold page cache) and is not counted.
"""

from __future__ import annotations

from bench.apps import time_to_icon
from bench.common import Options, Result, desktop, median, ratio, scratch_dir, scratch_env

KEYS = ("startup_vs_minimal",)


def run(opts: Options) -> Result:
    repeats = opts.pick(opts.repeats, 1)
    times: dict[str, list[float]] = {"agent": [], "minimal": []}
    with scratch_dir("startup") as root, desktop(root) as display:
        env = scratch_env(root, display)
        for name in times:
            time_to_icon(name, env, root / f"{name}.log")
        for _ in range(repeats):
            for name, samples in times.items():
                samples.append(time_to_icon(name, env, root / f"{name}.log"))
    agent, minimal = median(times["agent"]), median(times["minimal"])
    r = ratio(agent, minimal)
    rows = [f"tray icon visible: agent {agent * 1000:.0f} ms, minimal {minimal * 1000:.0f} ms "
            f"(median of {repeats}) -> {r}",
            "  agent runs: " + ", ".join(f"{t * 1000:.0f}" for t in times["agent"]) + " ms",
            "  minimal runs: " + ", ".join(f"{t * 1000:.0f}" for t in times["minimal"]) + " ms"]
    return Result("startup", {"startup_vs_minimal": r}, rows)
