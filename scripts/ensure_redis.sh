#!/usr/bin/env bash
# Make sure a Redis answers at $REDIS_URL (the environment's, else the last REDIS_URL line of .env, as the settings
# read it; default redis://127.0.0.1:6379/0): on this machine, start one on its port, installing it first if needed.
set -euo pipefail
url=${REDIS_URL:-}
if [ -z "$url" ] && [ -f .env ]; then
  url=$(sed -n 's/^[[:space:]]*\(export[[:space:]]\+\)\?REDIS_URL[[:space:]]*=[[:space:]]*//p' .env | tail -n 1 | tr -d "\"'")
fi
url=${url:-redis://127.0.0.1:6379/0}
hostport=${url#*://}; hostport=${hostport##*@}; hostport=${hostport%%/*}
host=${hostport%%:*}; port=${hostport##*:}
[ "$port" = "$hostport" ] && port=6379
port=${REDIS_PORT:-$port}
if timeout 3 bash -c 'exec 3<>/dev/tcp/"$0"/"$1"' "$host" "$port" 2>/dev/null && redis-cli -h "$host" -p "$port" ping >/dev/null 2>&1; then
  echo "redis: already answering on $host:$port"; exit 0
fi
case "$host" in
  127.0.0.1|localhost) ;;
  *) echo "redis: nothing answers at $host:$port (REDIS_URL); start it there, or point REDIS_URL at this machine" >&2
     exit 1 ;;
esac
if ! command -v redis-server >/dev/null; then
  echo "redis: installing redis-server"
  if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi
mkdir -p var
redis-server --port "$port" --bind 127.0.0.1 --daemonize yes --dir "$PWD/var" --logfile "$PWD/var/redis.log" \
  --pidfile "$PWD/var/redis.pid"
for _ in $(seq 50); do redis-cli -p "$port" ping >/dev/null 2>&1 && { echo "redis: started on 127.0.0.1:$port"; exit 0; }; sleep 0.1; done
echo "redis: failed to start (see var/redis.log)" >&2; exit 1
