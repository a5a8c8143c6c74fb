"""The logic of the service, grouped by what it serves: access, people, field, ranking, reference.

Routers (app/routers) and commands (app/commands) call into these; services never import
FastAPI routing or the command line.
"""
