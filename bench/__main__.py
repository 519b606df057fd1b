"""``bench/run``: every benchmark in turn, a readable table, and one JSON line at the end.

Usage: bench/run [--quick] [--only NAME ...]
A benchmark that cannot run here reports null for its keys, with the reason in the table.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from types import ModuleType

from bench.common import Options, Result, Unavailable

# Order matters: the deb build is last (it is the slowest and needs another engineer's work).
BENCHMARKS = ("posture", "startup", "idle", "tunnel", "export", "verifier", "gateway",
              "console", "deb_size")
JSON_KEYS = ("posture_vs_slowest_probe", "startup_vs_minimal", "idle_rss_vs_minimal",
             "idle_uss_vs_minimal",
             "verifier_attest_vs_bare", "gateway_throughput_vs_direct",
             "console_fleet_vs_trivial", "console_attest_with_ingest_vs_without",
             "console_attest_vs_bare",
             "gateway_p50_latency_vs_direct",
             "idle_cpu_percent", "tunnel_throughput_vs_stunnel",
             "tunnel_p50_latency_vs_stunnel", "export_vs_zip", "deb_size_vs_minimal",
             "deb_installed_vs_minimal",
             *(f"tunnel_{what}_vs_stunnel_{n}" for what in ("throughput", "p50_latency")
               for n in (1, 20, 100)))


def run_one(name: str, opts: Options) -> Result:
    module: ModuleType = importlib.import_module(f"bench.{name}")
    keys: tuple[str, ...] = module.KEYS
    try:
        result: Result = module.run(opts)
    except Unavailable as exc:
        return Result.skipped(name, keys, str(exc))
    except Exception as exc:  # one broken benchmark must not hide the others' numbers
        traceback.print_exc(file=sys.stderr)
        return Result.skipped(name, keys, f"failed: {type(exc).__name__}: {exc}"[:300])
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes and durations: checks the machinery, not the product")
    p.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run only these")
    p.add_argument("--repeats", type=int, default=5, help="runs per median (default 5)")
    args = p.parse_args(argv)
    opts = Options(quick=args.quick, repeats=args.repeats)
    values: dict[str, float | None] = dict.fromkeys(JSON_KEYS)
    print(f"{'benchmark':<10} result", flush=True)
    for name in args.only or BENCHMARKS:
        start = time.monotonic()
        result = run_one(name, opts)
        values.update(result.ratios)
        took = time.monotonic() - start
        for i, row in enumerate(result.rows):
            label = f"{name:<10}" if i == 0 else " " * 10
            print(f"{label} {row}", flush=True)
        print(f"{'':<10} ({took:.0f} s)", flush=True)
    print(json.dumps(values), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
