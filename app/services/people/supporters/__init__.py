"""Consented supporters: storage (core), CSV import, review, aggregates ≥ k."""
