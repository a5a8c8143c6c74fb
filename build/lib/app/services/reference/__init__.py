"""Public reference data shared by every campaign: imports of INSEE tiles, doors (BAN/BAL),
district contours and election results; tile-to-district allocation; public read routes.

May import: app.geo, app.db, app.errors. Never campaign data.
"""
