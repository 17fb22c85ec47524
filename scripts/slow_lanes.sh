#!/usr/bin/env bash
# The slow part of `make test` in two lanes side by side, each one test at a time on its own PostgreSQL (or, with
# $DATABASE_URL, its own test database): the browser tests (e2e) in one, the other slow tests (real workers training
# models, multi-process integration) in the other. Two browser tests never share the cores, nor two trainings.
# The browser lane's output is kept in a file and printed after the other lane's. Exit status 5 (no test selected
# in a lane, e.g. PYTEST_ARGS names a file without browser tests) is not a failure.
#   scripts/slow_lanes.sh PYTHON [pytest arguments...]
set -uo pipefail
py=$1; shift
here=$(cd "$(dirname "$0")" && pwd)
log=$(mktemp /tmp/labelloop-browser-lane.XXXXXX)
trap 'rm -f "$log"' EXIT
export DJANGO_SETTINGS_MODULE=${DJANGO_SETTINGS_MODULE:-config.settings.test}
LABELLOOP_TEST_DB_SUFFIX=browser "$here/with_postgres.sh" "$py" -m pytest -m e2e "$@" >"$log" 2>&1 &
browser=$!
trap 'kill "$browser" 2>/dev/null; rm -f "$log"' EXIT
echo "slow lanes: the browser tests run beside these; their output follows"
"$here/with_postgres.sh" "$py" -m pytest -m "slow and not e2e" "$@"
other=$?
wait "$browser"
browser_rc=$?
echo "==================== browser lane (pytest -m e2e) ===================="
cat "$log"
ok() { [ "$1" -eq 0 ] || [ "$1" -eq 5 ]; }
ok "$other" && ok "$browser_rc" && exit 0
echo "slow lanes: failed (other slow tests: exit $other, browser tests: exit $browser_rc)" >&2
exit 1
