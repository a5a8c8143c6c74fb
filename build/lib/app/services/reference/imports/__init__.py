"""Imports of public reference data (tiles, doors, districts, results), streamed with COPY."""
