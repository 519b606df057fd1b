"""antivirus: Security Center and Defender (Windows), XProtect and Gatekeeper (macOS), clamd and
mdatp (Linux).
"""
