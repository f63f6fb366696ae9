#!/usr/bin/env bash
# Serves an example site with consentmw on http://127.0.0.1:8000, from this checkout.
# It works on a stock Debian or Ubuntu python3: pip there refuses to install outside a virtual
# environment (PEP 668), so the demo lives in .venv, the one scripts/test.sh uses.
# Arguments go to `consentmw demo`: scripts/demo.sh --site django --port 8001
set -euo pipefail
cd "$(dirname "$0")/.."

if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "scripts/demo.sh: consentmw needs Python 3.11 or newer; python3 is $(python3 --version 2>&1)" >&2
  exit 1
fi
if [ -z "${VIRTUAL_ENV:-}" ]; then
  if [ ! -x .venv/bin/python ] && ! python3 -m venv .venv; then
    rm -rf .venv
    echo "scripts/demo.sh: python3 cannot make a virtual environment; on Debian or Ubuntu: sudo apt-get install python3-venv" >&2
    exit 1
  fi
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
extras=(".[demo]")
case " $* " in *" django "* | *"--site=django"*) extras+=("django>=4.2") ;; esac
python -m pip install -q -e "${extras[@]}"
exec python -m consentmw demo "$@"
