"""Consented supporters (issue 5): storage (core), CSV import, review, aggregates ≥ k."""
