#!/bin/sh
# Apply migrations as the schema owner, then run the service as its unprivileged role.
set -e
if [ -z "${DATABASE_URL:-}" ] || [ -z "${OWNER_DATABASE_URL:-}" ]; then
  echo "Set DATABASE_URL (the service's role) and OWNER_DATABASE_URL (the schema owner)." >&2
  exit 1
fi
porte db migrate
exec "$@"
