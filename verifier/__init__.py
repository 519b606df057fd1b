"""byod-verifier: the city-side posture verifier (docs/verifier.md, docs/verifier-protocol.md)."""
