"""Self-update through The Update Framework: metadata refresh, download, verification, install."""
