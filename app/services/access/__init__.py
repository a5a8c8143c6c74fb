"""Who may do what: accounts and sign-in, campaigns (and their territory) and members, invite
links, the audit log, and the encryption of personal columns.

May import: app.context, app.db, app.errors, app.security (credentials), app.config, and the pure
code helpers of reference (``reference.codes``). Never the other service groups.
"""
