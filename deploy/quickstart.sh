#!/usr/bin/env bash
# tocsin quick start: installs what tocsin needs (Debian 12), builds it, starts
# Redis (append-only, fsync always, on a local port) and tocsind with its
# embedded Kafka, publishes a sample incident and tells you how to watch it.
# Stop everything with: bash deploy/quickstart.sh stop
set -euo pipefail

cd "$(dirname "$0")/.."
RUN_DIR=${TOCSIN_QUICKSTART_DIR:-/tmp/tocsin-quickstart}
REDIS_PORT=${REDIS_PORT:-6390}
HTTP_PORT=${HTTP_PORT:-8080}

stop() {
    for f in "$RUN_DIR"/tocsind.pid "$RUN_DIR"/redis.pid; do
        [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
        rm -f "$f"
    done
}

if [ "${1:-}" = stop ]; then
    stop
    echo "tocsin quick start stopped."
    exit 0
fi

echo "==> Installing packages (apt-get)"
bash deploy/install-deps.sh

echo "==> Building"
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTOCSIN_TESTS=OFF >/dev/null
cmake --build build -j"$(nproc)" >/dev/null

stop
mkdir -p "$RUN_DIR/redis"
echo "==> Starting Redis on 127.0.0.1:$REDIS_PORT (appendonly yes, appendfsync always)"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$RUN_DIR/redis" \
    --appendonly yes --appendfsync always --save '' --maxmemory-policy noeviction \
    --daemonize yes --pidfile "$RUN_DIR/redis.pid" --logfile "$RUN_DIR/redis.log"

# The admin API (publishing, webhooks, subscribers) needs a token: one for
# this demo, kept in the run directory.
[ -s "$RUN_DIR/admin.token" ] || head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$RUN_DIR/admin.token"
TOKEN=$(cat "$RUN_DIR/admin.token")
echo "==> Starting tocsind on http://127.0.0.1:$HTTP_PORT (log: $RUN_DIR/tocsind.log)"
TOCSIN_HTTP_LISTEN=127.0.0.1:$HTTP_PORT TOCSIN_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 \
    TOCSIN_ADMIN_TOKEN=$TOKEN TOCSIN_PUBLIC_URL=http://127.0.0.1:$HTTP_PORT \
    nohup build/tocsind >"$RUN_DIR/tocsind.log" 2>&1 &
echo $! >"$RUN_DIR/tocsind.pid"
for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null 2>&1 && break
    sleep 0.2
done
curl -fsS "http://127.0.0.1:$HTTP_PORT/readyz" >/dev/null || {
    echo "tocsind did not become ready; its log:" >&2
    tail -n 30 "$RUN_DIR/tocsind.log" >&2
    exit 1
}
BOOTSTRAP=$(grep -o 'bootstrap=[0-9.:]*' "$RUN_DIR/tocsind.log" | head -n 1 | cut -d= -f2)

CTL="build/tocsinctl --url http://127.0.0.1:$HTTP_PORT"
echo "==> Publishing a sample incident (tocsinctl → admin API → Kafka)"
if ! TOCSIN_ADMIN_TOKEN=$TOKEN $CTL show demo-1 >/dev/null 2>&1; then
    TOCSIN_ADMIN_TOKEN=$TOKEN $CTL publish --id demo-1 --title "Playback fails for some users" \
        --components playback --regions eu-west --impact major --message "We are looking into it."
fi
for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/incidents" | grep -q demo-1 && break
    sleep 0.1
done
echo
curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/incidents"
echo
cat <<MSG

tocsin is running: http://127.0.0.1:$HTTP_PORT  (Kafka embedded at $BOOTSTRAP)

Status page (live):  http://127.0.0.1:$HTTP_PORT/
Watch updates live:  build/tocsinctl --url http://127.0.0.1:$HTTP_PORT tail --components playback
  or with curl (SSE): curl -N 'http://127.0.0.1:$HTTP_PORT/v1/events?components=playback'
WebSocket: ws://127.0.0.1:$HTTP_PORT/v1/ws?components=playback  (subprotocol tocsin.v1)

Then, in another terminal, post the next states of the incident:
    export TOCSIN_ADMIN_TOKEN=$TOKEN TOCSIN_URL=http://127.0.0.1:$HTTP_PORT
    build/tocsinctl update demo-1 --status identified --message "A bad deploy; rolling back."
    build/tocsinctl resolve demo-1 --message "Fixed."
(or produce events to Kafka yourself: kcat -b $BOOTSTRAP -t tocsin.incidents, see README)

Metrics: curl http://127.0.0.1:$HTTP_PORT/metrics     Stop: bash deploy/quickstart.sh stop
MSG
