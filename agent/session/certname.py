"""Does a certificate name a host? (RFC 6125 rules, used where SNI and the checked name differ.)

The tunnel sends the office PC's name as SNI, so the gateway can route, but checks the gateway's
certificate against the gateway's own name. Python's ``ssl`` ties both to ``server_hostname``, so
the tunnel verifies the chain with OpenSSL and the name here.
"""

from __future__ import annotations

import ipaddress

from cryptography import x509


def _dns_match(pattern: str, host: str) -> bool:
    pattern, host = pattern.lower().rstrip("."), host.lower().rstrip(".")
    if "*" not in pattern:
        return pattern == host
    # Only a whole left-most label may be a wildcard, and never for a public suffix-like "*.com".
    label, _, rest = pattern.partition(".")
    if label != "*" or "*" in rest or rest.count(".") < 1:
        return False
    h_label, _, h_rest = host.partition(".")
    return bool(h_label) and h_rest == rest


def certificate_names_host(der: bytes, host: str) -> bool:
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False  # no fallback to the subject CN (RFC 6125 §6.4.4 for new deployments)
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return any(_dns_match(n, host) for n in san.get_values_for_type(x509.DNSName))
    return ip in san.get_values_for_type(x509.IPAddress)
