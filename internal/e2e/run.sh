#!/usr/bin/env bash
# End-to-end throughput on loopback: wrk against a bare net/http server
# and the reference service on its SQLite default and on Redis, each
# exact and local-first, interleaved over ROUNDS rounds. Needs wrk and a
# Redis at REDIS_URL (default the local one). Usage: internal/e2e/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-10s} CONNS=${CONNS:-64}
export REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$bin"' EXIT
go build -o "$bin/server" ./examples/server
go build -o "$bin/bare" ./internal/e2e/bare
token=admin_e2e

start() { # name port env...
  local name=$1 port=$2; shift 2
  env ADDR=127.0.0.1:$port ADMIN_TOKEN=$token "$@" "$bin/$name" >"$bin/$name.$port.log" 2>&1 &
  for _ in $(seq 50); do curl -s -o /dev/null "127.0.0.1:$port/" && return; sleep 0.1; done
  echo "$name on $port did not start" >&2; exit 1
}
start bare 18080
start server 18081 LIMITER=exact
start server 18082 LIMITER=local
start server 18083 LIMITER=exact REDIS_URL= DATA_DIR="$bin/sqlite-exact"
start server 18084 LIMITER=local REDIS_URL= DATA_DIR="$bin/sqlite-local"

# One account per service, on a custom limit that never binds, and a key.
key() { # port
  local a="Authorization: Bearer $token" acct="X-Account-ID: acct_e2e_$RANDOM"
  curl -sf -X PUT "127.0.0.1:$1/api/v1/account" -H "$a" -H "$acct" \
    -d '{"limits":[{"limit":1000000000,"period_seconds":86400}]}' >/dev/null
  curl -sf -X POST "127.0.0.1:$1/api/v1/api-keys" -H "$a" -H "$acct" -d '{"name":"e2e"}' |
    sed 's/.*"api_key":"\([^"]*\)".*/\1/'
}
k1=$(key 18081) k2=$(key 18082) k3=$(key 18083) k4=$(key 18084)
for p in 18081:$k1 18082:$k2 18083:$k3 18084:$k4; do
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${p#*:}" "127.0.0.1:${p%%:*}/api/v1/health")
  [ "$code" = 200 ] || { echo "port ${p%%:*} answers $code, not 200" >&2; exit 1; }
done

measure() { # label port [key]
  local h=()
  [ -n "${3:-}" ] && h=(-H "Authorization: Bearer $3")
  local rps
  rps=$(wrk -t2 -c"$CONNS" -d"$DURATION" "${h[@]}" "http://127.0.0.1:$2/api/v1/health" | awk '/Requests\/sec/ {print $2}')
  echo "$1 $rps"
}
for r in $(seq "$ROUNDS"); do
  echo "# round $r"
  measure bare 18080
  measure redis-exact 18081 "$k1"
  measure redis-local-first 18082 "$k2"
  measure sqlite-exact 18083 "$k3"
  measure sqlite-local-first 18084 "$k4"
done
