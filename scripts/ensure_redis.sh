#!/usr/bin/env bash
# Make sure a Redis answers on $REDIS_URL's port (default 6379): start one, installing it first if needed.
set -euo pipefail
port=${REDIS_PORT:-6379}
if (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && redis-cli -p "$port" ping >/dev/null 2>&1; then
  echo "redis: already answering on 127.0.0.1:$port"; exit 0
fi
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
