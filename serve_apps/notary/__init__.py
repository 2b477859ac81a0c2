"""The notary's HTTP surface: ML-Chain v6 endpoints and admin endpoints."""
