"""Diagnostic bundles for the help desk: redacted export, signed manifest, hostile-safe reader."""
