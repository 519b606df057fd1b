"""Runs the agent's ``Tunnel`` in its own process, as the product does (not in the load generator).

Usage: python -m bench.tunnel_host GW_PORT SNI MAX_CONN CERT_DIR
Prints the local port and serves up to MAX_CONN connections until its stdin closes, so the load
generator decides when a run is over. (This benchmark found that ``Tunnel.wait()`` returned when
the first connection ended; fixed, with a regression test in tests/integration/test_tunnel.py.)
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import sys
from pathlib import Path

from agent.session.tunnel import Tunnel, new_event_loop


def client_context(cert_dir: Path) -> ssl.SSLContext:
    # The same shape as the product's context: CERT_REQUIRED, the tunnel checks the name itself.
    ctx = ssl.create_default_context(cafile=str(cert_dir / "ca.pem"))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.check_hostname = False
    ctx.load_cert_chain(cert_dir / "user.pem", cert_dir / "user.key")
    return ctx


async def serve(gw_port: int, sni: str, max_conn: int, cert_dir: Path) -> None:
    tunnel = Tunnel("127.0.0.1", gw_port, sni, client_context(cert_dir),
                    max_connections=max_conn, half_close_grace=0.5, verify_name="localhost")
    port = await tunnel.start()
    print(port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.buffer.read)
    if tunnel.stats.errors:
        print("errors: " + "; ".join(tunnel.stats.errors), file=sys.stderr, flush=True)
    await tunnel.close()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("gw_port", type=int)
    p.add_argument("sni")
    p.add_argument("max_conn", type=int)
    p.add_argument("cert_dir", type=Path)
    a = p.parse_args()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:  # as BackgroundTunnel does
        runner.run(serve(a.gw_port, a.sni, a.max_conn, a.cert_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
