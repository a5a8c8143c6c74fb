"""Who may do what: accounts and sign-in (auth), server-level rights (accounts), campaigns and
members, invitations to join by e-mail (member_invitations), invite links for volunteers
(invites), the audit log, and the encryption of personal columns (crypto).

May import: app.context, app.db, app.errors, app.security (credentials), app.config, app.mail,
app.i18n. Never the other service groups.
"""
