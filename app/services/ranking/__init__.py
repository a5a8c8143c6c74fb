"""Where to knock first: the ranking factors and their weighted score, exports of priority zones
and the OGC API - Features collections.

May import: reference (allocation), access (audit, territory), app.context, app.db.
"""
