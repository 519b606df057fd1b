"""A stand-in agent process for the enforcement tests: attest, hold a session through the
gateway (as an RDP client would), re-attest every ``--every`` seconds. SIGSTOP freezes both.

    python -m testkit.attest_agent DEMO_DIR USER WORK_DIR --every 1
prints "open" once the office PC greeted, then re-attests until killed.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import time
from pathlib import Path

from agent.attest import (
    Credential,
    VerifierEndpoint,
    credential_files,
    gateway_context,
    obtain_credential,
)
from testkit.verifier import load_user, report
from verifier import demo


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("demo_dir")
    p.add_argument("user")
    p.add_argument("work")
    p.add_argument("--every", type=float, default=1.0)
    args = p.parse_args()
    info = json.loads(Path(args.demo_dir, "layout.json").read_text())
    lay = demo.Layout(Path(info["dir"]), info["verifier_port"], info["gateway_port"],
                      info["pc_ports"], Path(info["config"]), info["users"])
    user = load_user(lay, args.user, Path(args.work))
    ca = (lay.dir / "city-ca.pem").read_text()
    endpoint = VerifierEndpoint(f"https://127.0.0.1:{lay.verifier_port}", ca)

    def attest() -> str:
        return obtain_credential(endpoint, user.identity, report(), policy_id=demo.POLICY_ID,
                                 policy_serial=demo.POLICY_SERIAL, agent_version="0.1.0",
                                 target="office").certificate_pem

    cred = attest()
    with credential_files(Credential(cred, 0, user.name, "", "", 0)) as path:
        ctx = gateway_context(path, user.identity, ca)
    raw = socket.create_connection(("127.0.0.1", lay.gateway_port), timeout=10)
    session = ctx.wrap_socket(raw, server_hostname="localhost")
    session.recv(100)
    print("open", flush=True)
    while True:  # the session stays open in this process; the verifier hears from us
        time.sleep(args.every)
        attest()


if __name__ == "__main__":
    sys.exit(main())
