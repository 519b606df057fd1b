"""The IT and help-desk web console of the verifier: fleet, look-up, impact (docs/console.md)."""
