"""HTTP API of the rental marketplace (offers, jobs, escrow balances, disputes, wallet login)."""
