"""Who may do what: accounts and sign-in (auth), server-level rights (accounts), campaigns (and
their territory) and members, invitations to join by e-mail (member_invitations), invite links
for volunteers (invites), the audit log, and the encryption of personal columns (crypto).

May import: app.context, app.db, app.errors, app.security (credentials), app.config, app.mail,
app.i18n, and the pure code helpers of reference (``reference.codes``). Never the other service
groups.
"""
