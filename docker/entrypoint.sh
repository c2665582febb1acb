#!/usr/bin/env bash
# The image's entrypoint, also runnable from a checkout: docker/entrypoint.sh ROLE [ARGS...]
#   api      wait for Postgres and Redis (those configured), then `mira serve ARGS`
#   worker   wait for Postgres and Redis, then `mira worker ARGS`
#   migrate  wait for Postgres, then `mira migrate` (one-shot; exits 0 when the schema is current)
#   demo     `mira demo ARGS` (embedded: no Postgres, no Redis)
# Waits at most MIRA_WAIT_SECONDS (default 60) per service. Exit codes: those of the command,
# 1 when a service never answered, 2 for an unknown role.
set -euo pipefail

app="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
roles='api | worker | migrate | demo'
role="${1:-}"
[ $# -gt 0 ] && shift

mira() { exec node --import tsx "$app/src/cli/main.ts" "$@"; }
wait_for() { node --import tsx "$app/docker/wait-for.ts" "$@"; }

case "$role" in
  api)     wait_for postgres redis; mira serve "$@" ;;
  worker)  wait_for postgres redis; mira worker "$@" ;;
  migrate) wait_for postgres; mira migrate "$@" ;;
  demo)    mira demo "$@" ;;
  '')      echo "entrypoint: no role given (one of: $roles)" >&2; exit 2 ;;
  *)       echo "entrypoint: unknown role \"$role\" (one of: $roles)" >&2; exit 2 ;;
esac
