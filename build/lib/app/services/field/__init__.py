"""The canvassing itself: turfs (drawn and cut), assignments, rounds, visits, progress, door lists
and the map tiles (with their per-worker cache).

May import: access (audit), app.geo, app.context, app.db.
"""
