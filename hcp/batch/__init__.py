"""Batch work (Ray jobs) and the Ray head it runs on."""
