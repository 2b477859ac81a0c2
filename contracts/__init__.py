"""Solidity sources of hcp's chain contracts and their committed compiled artifacts."""
