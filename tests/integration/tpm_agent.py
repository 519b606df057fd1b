"""The agent's half of the TPM end-to-end test, in its own process (as the agent runs): loading
tpm2-openssl changes the OpenSSL of the whole process, and the test's servers must not use it.

stdin: JSON {keystore, est_url, anchor, code, subject, verifier_url, verifier_ca, report,
policy_id, policy_serial}. stdout: one JSON line with what happened.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from agent.attest import VerifierEndpoint, VerifierError, obtain_credential
from agent.keystore import Keystore, est


def main() -> int:
    args = json.loads(sys.stdin.read())
    ks = Keystore(Path(args["keystore"]), None)  # a hardware key needs no keyring
    out: dict[str, object] = {}
    first = est.enroll(ks, args["est_url"], args["anchor"], subject=args["subject"],
                       code=args["code"], provider="tpm2")
    out["enrolled_serial"] = first.serial
    out["status"] = ks.status().to_json(first.not_before)
    renewed = est.renew(ks)  # /simplereenroll over mutual TLS, signed by the TPM key
    out["renewed_serial"] = renewed.serial
    identity = ks.load_identity()
    out["protection"] = identity.protection
    try:
        cred = obtain_credential(VerifierEndpoint(args["verifier_url"], args["verifier_ca"]),
                                 identity, args["report"], policy_id=args["policy_id"],
                                 policy_serial=args["policy_serial"], agent_version="0.1.0",
                                 target="office")
        out["credential_pc"] = cred.pc
        out["credential"] = cred.certificate_pem
    except VerifierError as exc:
        out["refused"] = exc.code
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
