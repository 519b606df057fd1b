"""IT's tooling (``byod-admin``), never shipped in the staff build.

Policy keys and signing, installer configuration, release signing, SBOM.
"""
