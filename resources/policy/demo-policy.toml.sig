{
  "format": "byod-policy-sig/1",
  "algorithm": "ed25519",
  "key_id": "e93e5bb8f39530ba",
  "signature": "Y4YA+N0cqKUHIu8PY01w5WqVe20zaStciHQ2hyvTLVqsrPBlgyztWj+5sm6ptG5kWNJb4vnXxyU1VnvR7fEpCQ=="
}
