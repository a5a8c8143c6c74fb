"""Where to knock first: the ranking factors and their weighted score, exports of priority zones
and the OGC API - Features collections.

May import: reference (allocation, elections: sides by name), access (audit, territory),
field.progress and people.supporters.aggregates (the counts app.disclosure publishes: the only
campaign counts the ranking reads), app.disclosure, app.i18n, app.context, app.db.
"""
