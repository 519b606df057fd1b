"""Posture checks: what state is this PC in? Each check returns pass, warn, fail or unknown."""
