#!/usr/bin/env bash
# Run a command against PostgreSQL: $DATABASE_URL if set, else a throwaway cluster on a free port.
set -euo pipefail
if [ -n "${DATABASE_URL:-}" ]; then exec "$@"; fi
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bindir" ]; then
  echo "PostgreSQL server binaries not found (apt-get install postgresql); set DATABASE_URL instead" >&2; exit 1
fi
dir=$(mktemp -d /tmp/labelloop-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg=()
if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; as_pg=(runuser -u postgres --); fi
"${as_pg[@]}" "$bindir/initdb" -D "$dir/data" -U labelloop --auth=trust -E UTF8 >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null
cleanup() { "${as_pg[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
export DATABASE_URL="postgres://labelloop@127.0.0.1:$port/labelloop"
"${as_pg[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U labelloop labelloop
echo "postgres: throwaway cluster on 127.0.0.1:$port"
"$@"
