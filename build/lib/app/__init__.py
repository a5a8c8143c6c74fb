"""Porte-à-porte: self-hosted door-to-door canvassing maps over PostGIS."""

__version__ = "0.1.0"
