"""Personal data: consented supporters (import, review, aggregates), the local geocoder, the
public privacy form, GDPR rights and retention (purge).

May import: access (crypto, audit), reference (read-only public data), app.context, app.db.
"""
