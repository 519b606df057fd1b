"""Alembic migrations of the verifier database (run by `serve` and `byod-verifier db upgrade`)."""
