"""The approved remote session: mutual-TLS tunnel, RDP launchers, compliance monitor."""
