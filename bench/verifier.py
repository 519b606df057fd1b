"""Attestations per second of byod-verifier against a bare endpoint of the same ASGI server.

The whole city side of ``byod-verifier demo`` runs on loopback (verifier with mutual TLS over
SQLite, the shipped HAProxy configuration it drives through the runtime API). The load generator
is this process: ``CLIENTS`` threads, each attesting in a loop exactly as the agent does
(``agent.attest.obtain_credential``: a new mutual-TLS connection for ``/v1/nonce`` and one for
``/v1/attest``, the report signed with the device key). The baseline is the same server's
``GET /v1/health`` (same uvicorn, TLS, Starlette app; a handler that only builds a small JSON)
with the same connection pattern: a new mutual-TLS connection per request. Both are timed over
the same window, alternating, medians of 3. An attestation is two requests, so the ratio is
attestations/s over *pairs* of bare requests/s: 1.0 would mean the verifier's own work (nonce,
signature, re-evaluation with agent/policy, database, credential, HAProxy map) costs nothing.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.common import Options, Result, Unavailable, median, ratio, scratch_dir

KEYS = ("verifier_attest_vs_bare",)
CLIENTS = 4


def _rate(work: Callable[[], None], clients: int, seconds: float) -> float:
    """Completed ``work`` calls per second, over ``clients`` threads for ``seconds``."""
    stop = time.monotonic() + seconds
    done = [0] * clients
    errors: list[BaseException] = []

    def loop(i: int) -> None:
        try:
            while time.monotonic() < stop:
                work()
                done[i] += 1
        except BaseException as exc:
            errors.append(exc)

    start = time.monotonic()
    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 60)
    elapsed = time.monotonic() - start
    if errors:
        raise RuntimeError(f"load generator: {errors[0]!r}")
    return sum(done) / elapsed


def run(opts: Options) -> Result:
    if shutil.which("haproxy") is None:
        raise Unavailable("haproxy not installed (the verifier drives it)")
    from agent.attest import VerifierEndpoint, obtain_credential  # noqa: PLC0415
    from agent.keystore.tls import client_context  # noqa: PLC0415
    from testkit.verifier import load_user, report  # noqa: PLC0415
    from verifier import demo  # noqa: PLC0415

    window = opts.pick(5.0, 0.5)
    rounds = opts.pick(3, 1)
    with scratch_dir("verifier") as d, contextlib.ExitStack() as stack:
        lay = demo.layout(d / "city", credential_minutes=10.0)
        running = demo.start(lay)
        stack.callback(running.stop)
        user = load_user(lay, "userA", d)
        ca_pem = (lay.dir / "city-ca.pem").read_text()
        endpoint = VerifierEndpoint(f"https://127.0.0.1:{lay.verifier_port}", ca_pem)
        ctx = client_context(ca_pem, user.identity)  # one context, as the agent keeps it
        ctx.check_hostname = False  # the demo certificate names localhost; we dial 127.0.0.1
        rep = report()

        def attest() -> None:
            cred = obtain_credential(endpoint, user.identity, rep, policy_id=demo.POLICY_ID,
                                     policy_serial=demo.POLICY_SERIAL, agent_version="0.1.0",
                                     target="office", context=ctx)
            if cred.user != "userA":
                raise RuntimeError(f"credential for {cred.user!r}")

        def bare() -> None:
            conn = http.client.HTTPSConnection("127.0.0.1", lay.verifier_port, context=ctx,
                                               timeout=10)
            try:
                conn.request("GET", "/v1/health")
                resp = conn.getresponse()
                resp.read(65536)
                if resp.status != 200:
                    raise RuntimeError(f"health HTTP {resp.status}")
            finally:
                conn.close()

        try:
            attest()  # warm-up: the first attestation opens the database, imports, caches
            bare()
        except (ssl.SSLError, OSError) as exc:
            raise RuntimeError(f"verifier not usable: {exc}") from exc
        att, base = [], []
        for _ in range(rounds):
            base.append(_rate(bare, CLIENTS, window))
            att.append(_rate(attest, CLIENTS, window))
        log_tail = Path(lay.dir / "verifier.log").read_text(errors="replace")[-300:]
    a, b = median(att), median(base) / 2  # pairs of bare requests
    r = ratio(a, b)
    rows = [f"attestations {a:.1f}/s vs pairs of bare GET /v1/health {b:.1f}/s ({CLIENTS} "
            "clients, "
            f"a new mutual-TLS connection per request, {window:.0f} s windows, medians of "
            f"{rounds}) -> {r}"]
    if not att or a == 0:
        rows.append(f"verifier log: {log_tail!r}")
    return Result("verifier", {"verifier_attest_vs_bare": r}, rows)
