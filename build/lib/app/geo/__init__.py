"""Pure geometry helpers (no I/O): INSEE grid ids, projections."""
