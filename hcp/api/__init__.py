"""Pure pieces of the platform HTTP API that need no web framework: inference usage ledger."""
