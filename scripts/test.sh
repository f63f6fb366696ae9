#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it:
# Debian's chromium (browser tests), postgresql (consent log tests, started on 127.0.0.1),
# the package with its test extra (in .venv unless a virtualenv is already active), then pytest.
# Extra arguments go to pytest: scripts/test.sh -k cookie
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v chromium >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium postgresql >/dev/null
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install -q --upgrade pip >/dev/null
python -m pip install -q -e ".[test]"

# A throwaway PostgreSQL cluster of our own, on loopback only.
PGPORT=${CONSENTMW_PGPORT:-54329}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGDATA=${TMPDIR:-/tmp}/consentmw-test-pg
run_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }
if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT"; then
  as_root rm -rf "$PGDATA"
  mkdir -p "$PGDATA"
  [ "$(id -u)" = 0 ] && chown postgres "$PGDATA"
  run_pg "'$PGBIN/initdb' -D '$PGDATA' -A trust -U postgres -E UTF8" >/dev/null
  run_pg "'$PGBIN/pg_ctl' -D '$PGDATA' -l '$PGDATA/server.log' -w -o \"-c listen_addresses=127.0.0.1 -p $PGPORT -k '$PGDATA'\" start" >/dev/null
fi
export CONSENTMW_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$PGPORT/postgres"

python -m pytest "$@"
