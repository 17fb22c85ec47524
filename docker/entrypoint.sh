#!/bin/sh
# Container entry point: wait for the database, then run one role.
#   web      gunicorn on :8000 (WEB_CONCURRENCY processes x WEB_THREADS threads)
#   worker   celery worker on $CELERY_QUEUES (housekeeping, default, gpu or a comma list; default "default")
#            with $CELERY_CONCURRENCY processes
#   beat     celery beat (run exactly one in the whole deployment)
#   migrate  apply migrations and exit
#   manage   python manage.py "$@"   (e.g. `manage createsuperuser`)
# Anything else is executed as given.
set -eu
here=$(cd "$(dirname "$0")" && pwd)

wait_for_db() {
  python - <<'PY'
import os
import sys
import time

import django
from django.db import connection
from django.db.utils import OperationalError

django.setup()
deadline = time.monotonic() + float(os.environ.get("LABELLOOP_DB_WAIT_SECONDS", "60"))
while True:
    try:
        connection.ensure_connection()
        break
    except OperationalError as exc:
        if time.monotonic() > deadline:
            sys.exit(f"database not reachable: {exc}")
        time.sleep(1)
PY
}

role="${1:-web}"
[ $# -gt 0 ] && shift

case "$role" in
  web)
    wait_for_db
    # Refresh the static volume that nginx serves (profile nginx) from this image's collected copy.
    if [ -d /app/staticfiles-shared ] && [ -w /app/staticfiles-shared ]; then
      cp -a /app/staticfiles/. /app/staticfiles-shared/
    fi
    # LOG_FORMAT=json: gunicorn's own and access lines as JSON too, like Django's.
    if [ "${LOG_FORMAT:-plain}" = json ]; then set -- --log-config-json "$here/gunicorn-logging.json" "$@"; fi
    # X-Forwarded-Proto/-For are believed only behind a proxy (LABELLOOP_BEHIND_PROXY, the switch Django's settings
    # read too), and then from FORWARDED_ALLOW_IPS (default any peer: only the proxy may reach this port).
    # Without a proxy no peer is believed, so no client can claim https.
    case "$(printf %s "${LABELLOOP_BEHIND_PROXY:-}" | tr '[:upper:]' '[:lower:]')" in
      true|on|ok|y|yes|1) forwarded_allow_ips="${FORWARDED_ALLOW_IPS:-*}" ;;
      *) forwarded_allow_ips="" ;;
    esac
    # Keep-alive: gunicorn's default (2 s) closes an idle connection just as a client polling a job every 2 s reuses
    # it (RemoteDisconnected, no access-log line). 65 s outlasts common poll intervals and the 60 s after which nginx
    # (upstream keepalive_timeout) and cloud load balancers drop an idle connection, so the proxy, never gunicorn,
    # closes first. An idle kept-alive connection waits in the gthread worker's poller, not in a thread: it costs a
    # socket, and past worker_connections (1000) less WEB_THREADS per process gunicorn answers "Connection: close".
    exec gunicorn config.wsgi \
      --bind "0.0.0.0:${PORT:-8000}" \
      --workers "${WEB_CONCURRENCY:-3}" --threads "${WEB_THREADS:-4}" \
      --timeout "${WEB_TIMEOUT:-120}" --graceful-timeout 30 --keep-alive "${WEB_KEEPALIVE:-65}" \
      --forwarded-allow-ips "$forwarded_allow_ips" \
      --access-logfile - --error-logfile - --no-control-socket "$@"
    ;;
  worker)
    wait_for_db
    exec celery -A config.celery_app worker \
      -Q "${CELERY_QUEUES:-default}" -c "${CELERY_CONCURRENCY:-2}" \
      -n "${CELERY_WORKER_NAME:-$(echo "${CELERY_QUEUES:-default}" | tr , -)}@%h" \
      -l "${LOG_LEVEL:-INFO}" --without-gossip --without-mingle "$@"
    ;;
  beat)
    wait_for_db
    exec celery -A config.celery_app beat -l "${LOG_LEVEL:-INFO}" \
      -s "${CELERY_BEAT_SCHEDULE_FILE:-/app/var/data/celerybeat-schedule}" "$@"
    ;;
  migrate)
    wait_for_db
    exec python manage.py migrate --noinput
    ;;
  manage)
    wait_for_db
    exec python manage.py "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
