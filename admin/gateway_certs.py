"""``byod-admin gateway-certs``: the files the shipped gateway configs read (installer/gateway/).

    init    --dir DIR --gateway-name gw.city.example.lg.jp [--passphrase-file F]
            DIR/staff-ca.pem        the CA that issues staff certificates (public)
            DIR/staff-ca.key        its key, encrypted PKCS#8 (never in plaintext on disk)
            DIR/gateway-chain.pem   the gateway's certificate + the CA (what the agent verifies;
                                    the policy's ``gateway_ca`` is DIR/staff-ca.pem)
            DIR/gateway.key         the gateway's TLS key, mode 0600: nginx and stunnel read it
                                    at start (a server key must be usable unattended)
            DIR/crl.pem             the CRL (empty at first), DIR/issued.json the register
    staff   --dir DIR --csr FILE --out CERT [--days N]   sign a staff member's CSR (the agent
            makes the key on the PC: ``byod-agent cert request``); the CN is the user name the
            gateway maps to that person's office PC
    revoke  --dir DIR CERT       add CERT to the CRL and rewrite DIR/crl.pem
    crl     --dir DIR            re-issue the CRL (before it expires: ``CRL_DAYS``)

After ``revoke``/``crl`` the gateway must re-read the CRL: the command prints the reload step
(nginx reads it at start and on HUP; stunnel on HUP; HAProxy with ``set ssl crl-file``).
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from admin.keys import read_passphrase
from agent.core import exitcodes, i18n
from agent.core.fsutil import atomic_write
from agent.core.messages import msg
from agent.policy.schema import valid_host

CA_DAYS = 3650
GATEWAY_DAYS = 397
STAFF_DAYS = 397
CRL_DAYS = 30
RELOAD = ("nginx: kill -HUP $(cat /run/byod-gateway/nginx.pid)   "
          "stunnel: kill -HUP $(cat /run/byod-gateway/stunnel.pid)")


def _say(key: str, **params: str | int) -> None:
    print(i18n.render(msg(key, **params), i18n.detect_language()))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _register(d: Path) -> dict[str, list[dict[str, str | int]]]:
    try:
        doc = json.loads((d / "issued.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {"issued": [], "revoked": []}
    if not isinstance(doc, dict):
        raise ValueError("issued.json is damaged")
    return {"issued": list(doc.get("issued", [])), "revoked": list(doc.get("revoked", []))}


def _load_ca(d: Path, args: argparse.Namespace) -> tuple[x509.Certificate,
                                                         ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate((d / "staff-ca.pem").read_bytes())
    key = serialization.load_pem_private_key((d / "staff-ca.key").read_bytes(),
                                             read_passphrase(args, confirm=False))
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError("staff-ca.key is not an EC key")
    return cert, key


def write_crl(d: Path, ca: x509.Certificate, key: ec.EllipticCurvePrivateKey,
              revoked: list[dict[str, str | int]]) -> None:
    now = _now()
    b = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
         .last_update(now - timedelta(minutes=5)).next_update(now + timedelta(days=CRL_DAYS)))
    for r in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(int(str(r["serial"]), 16))
            .revocation_date(datetime.fromisoformat(str(r["at"]))).build())
    atomic_write(d / "crl.pem", b.sign(key, hashes.SHA256()).public_bytes(
        serialization.Encoding.PEM), mode=0o644)


def init(args: argparse.Namespace) -> int:
    d = Path(args.dir)
    name = args.gateway_name
    if not valid_host(name):
        _say("admin.gateway.bad_name", name=name[:80])
        return exitcodes.USAGE
    if (d / "staff-ca.key").exists():
        _say("admin.exists", path=str(d / "staff-ca.key"))
        return exitcodes.USAGE
    secret = read_passphrase(args, confirm=True)
    d.mkdir(parents=True, exist_ok=True)
    now = _now()
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, args.org),
                         x509.NameAttribute(NameOID.COMMON_NAME, f"{args.org} BYOD staff CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=5))
          .not_valid_after(now + timedelta(days=CA_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False,
                                       False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    gw_key = ec.generate_private_key(ec.SECP256R1())
    gw = (x509.CertificateBuilder()
          .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
          .issuer_name(ca.subject).public_key(gw_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(minutes=5))
          .not_valid_after(now + timedelta(days=GATEWAY_DAYS))
          .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
          .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
          .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                         critical=False)
          .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
              ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    atomic_write(d / "staff-ca.key", ca_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret)), mode=0o600)
    atomic_write(d / "staff-ca.pem", _pem(ca), mode=0o644)
    atomic_write(d / "gateway.key", gw_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), mode=0o600)
    atomic_write(d / "gateway-chain.pem", _pem(gw) + _pem(ca), mode=0o644)
    write_crl(d, ca, ca_key, [])
    atomic_write(d / "issued.json", json.dumps({"issued": [], "revoked": []}).encode(),
                 mode=0o644)
    _say("admin.gateway.init_done", dir=str(d), ca=str(d / "staff-ca.pem"))
    return exitcodes.OK


def staff(args: argparse.Namespace) -> int:
    d = Path(args.dir)
    csr = x509.load_pem_x509_csr(Path(args.csr).read_bytes())
    if not csr.is_signature_valid:
        _say("admin.gateway.bad_csr", path=str(args.csr))
        return exitcodes.USAGE
    cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    cn = str(cns[0].value) if cns else ""
    if not cn or not all(c.isalnum() or c in "._-@" for c in cn) or len(cn) > 64:
        _say("admin.gateway.bad_csr", path=str(args.csr))
        return exitcodes.USAGE
    ca, key = _load_ca(d, args)
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([*ca.subject.get_attributes_for_oid(
                NameOID.ORGANIZATION_NAME), x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca.subject).public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=args.days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    atomic_write(Path(args.out), _pem(cert), mode=0o644)
    reg = _register(d)
    reg["issued"].append({"serial": f"{cert.serial_number:x}", "cn": cn,
                          "not_after": cert.not_valid_after_utc.isoformat()})
    atomic_write(d / "issued.json", json.dumps(reg, indent=1).encode(), mode=0o644)
    _say("admin.gateway.staff_done", cn=cn, out=str(args.out))
    return exitcodes.OK


def revoke(args: argparse.Namespace) -> int:
    d = Path(args.dir)
    cert = x509.load_pem_x509_certificate(Path(args.cert).read_bytes())
    ca, key = _load_ca(d, args)
    if cert.issuer != ca.subject:
        _say("admin.gateway.not_ours", path=str(args.cert))
        return exitcodes.USAGE
    reg = _register(d)
    serial = f"{cert.serial_number:x}"
    if not any(r["serial"] == serial for r in reg["revoked"]):
        reg["revoked"].append({"serial": serial, "at": _now().isoformat()})
    write_crl(d, ca, key, reg["revoked"])
    atomic_write(d / "issued.json", json.dumps(reg, indent=1).encode(), mode=0o644)
    _say("admin.gateway.revoked", serial=serial, crl=str(d / "crl.pem"), reload=RELOAD)
    return exitcodes.OK


def crl(args: argparse.Namespace) -> int:
    d = Path(args.dir)
    ca, key = _load_ca(d, args)
    write_crl(d, ca, key, _register(d)["revoked"])
    _say("admin.gateway.crl_done", crl=str(d / "crl.pem"), days=CRL_DAYS, reload=RELOAD)
    return exitcodes.OK


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("gateway-certs", help="gateway and staff certificates, CRL (for "
                       "installer/gateway/*.conf)")
    gs = g.add_subparsers(dest="gateway_command")
    i = gs.add_parser("init", help="staff CA, gateway certificate and key, empty CRL")
    i.add_argument("--dir", required=True)
    i.add_argument("--gateway-name", required=True, help="the gateway's DNS name")
    i.add_argument("--org", default="City", help="organisation name in the certificates")
    i.add_argument("--passphrase-file", help="the CA key passphrase (first line)")
    i.set_defaults(handler=init)
    s = gs.add_parser("staff", help="sign a staff member's CSR")
    s.add_argument("--dir", required=True)
    s.add_argument("--csr", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--days", type=int, default=STAFF_DAYS)
    s.add_argument("--passphrase-file")
    s.set_defaults(handler=staff)
    r = gs.add_parser("revoke", help="revoke a staff certificate and rewrite crl.pem")
    r.add_argument("--dir", required=True)
    r.add_argument("cert")
    r.add_argument("--passphrase-file")
    r.set_defaults(handler=revoke)
    c = gs.add_parser("crl", help="re-issue crl.pem (it is valid for 30 days)")
    c.add_argument("--dir", required=True)
    c.add_argument("--passphrase-file")
    c.set_defaults(handler=crl)
