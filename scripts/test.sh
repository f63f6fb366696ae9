#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian machine, then runs it:
# Debian's chromium (browser tests) with CJK and Thai fonts, postgresql (consent log tests, started on 127.0.0.1),
# the package with its test extra (in .venv unless a virtualenv is already active), then pytest.
# Extra arguments go to pytest: scripts/test.sh -k cookie
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The CJK and Thai fonts let the banner's screenshots in those languages show text, not boxes.
if ! command -v chromium >/dev/null 2>&1 || ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
  || ! dpkg -s fonts-noto-cjk fonts-thai-tlwg >/dev/null 2>&1; then
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends chromium postgresql \
    fonts-noto-cjk fonts-thai-tlwg >/dev/null
fi

if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install -q --upgrade pip >/dev/null
python -m pip install -q -e ".[test]"

# The consent log tests need PostgreSQL. A CONSENTMW_TEST_POSTGRES_URL set by the caller (a CI
# service) is used as it is. Otherwise: a throwaway cluster of our own on 127.0.0.1, kept running
# between runs and made again from nothing when it does not answer, and a fresh database per run,
# dropped when the run ends.
run_pg() { if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi; }

start_postgres() {
  local port=${CONSENTMW_PGPORT:-54329}
  local bin data stale db
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  data=/tmp/consentmw-test-pg-$port  # not under $HOME or $TMPDIR: the postgres user must reach it
  # Two runs starting at once must not both make the cluster.
  exec 9>"/tmp/consentmw-test-pg-$port.$(id -u).lock"
  flock -w 120 9 || true
  if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    if [ -f "$data/postmaster.pid" ]; then
      run_pg "'$bin/pg_ctl' -D '$data' -m immediate stop" >/dev/null 2>&1 || true
    fi
    rm -rf "$data"
    mkdir -p "$data"
    chmod 700 "$data"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$data"; fi
    run_pg "'$bin/initdb' -D '$data' -A trust -U postgres -E UTF8 --no-sync" >/dev/null
    if ! run_pg "'$bin/pg_ctl' -D '$data' -l '$data/server.log' -w -t 60 -o \"-c listen_addresses=127.0.0.1 -p $port -k '$data'\" start" >/dev/null; then
      echo "scripts/test.sh: PostgreSQL did not start on 127.0.0.1:$port; its log ends:" >&2
      tail -n 20 "$data/server.log" >&2 || true
      exit 1
    fi
  fi
  flock -u 9
  PSQL=("$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAtX -v ON_ERROR_STOP=1)
  # Databases of runs killed more than a day ago; a run still going keeps its own.
  stale=$("${PSQL[@]}" -c "SELECT datname FROM pg_database WHERE datname ~ '^consentmw_test_[0-9]+_[0-9]+$'
    AND split_part(datname, '_', 3)::bigint < extract(epoch FROM now()) - 86400")
  for db in $stale; do "${PSQL[@]}" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
  TEST_DB=consentmw_test_$(date +%s)_$$
  "${PSQL[@]}" -c "CREATE DATABASE $TEST_DB"
  trap drop_test_database EXIT
  export CONSENTMW_TEST_POSTGRES_URL="postgresql://postgres@127.0.0.1:$port/$TEST_DB"
}

drop_test_database() {
  "${PSQL[@]}" -c "DROP DATABASE IF EXISTS $TEST_DB WITH (FORCE)" >/dev/null 2>&1 || true
}

if [ -z "${CONSENTMW_TEST_POSTGRES_URL:-}" ]; then
  start_postgres
fi

python -m pytest "$@"
