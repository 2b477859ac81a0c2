"""The notary: verifies miners' signed proof-of-useful-work claims (ML-Chain v6) by
re-running their WASM artifact in a sandbox before anything reaches the ledger."""
