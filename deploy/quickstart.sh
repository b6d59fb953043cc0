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

echo "==> Starting tocsind on http://127.0.0.1:$HTTP_PORT (log: $RUN_DIR/tocsind.log)"
TOCSIN_HTTP_LISTEN=127.0.0.1:$HTTP_PORT TOCSIN_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0 \
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

publish() { # publish INCIDENT_ID JSON
    printf '%s\t%s\n' "$1" "$2" | kcat -q -b "$BOOTSTRAP" -t tocsin.incidents -P -K $'\t'
}

NOW=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "==> Publishing a sample incident to Kafka ($BOOTSTRAP)"
publish demo-1 "{\"event_id\":\"demo-1-v1-$$\",\"incident_id\":\"demo-1\",\"version\":1,\"status\":\"investigating\",\"impact\":\"major\",\"title\":\"Playback fails for some users\",\"message\":\"We are looking into it.\",\"components\":[\"playback\"],\"regions\":[\"eu-west\"],\"occurred_at\":\"$NOW\"}"
for _ in $(seq 1 50); do
    curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/incidents" | grep -q demo-1 && break
    sleep 0.1
done
echo
curl -fsS "http://127.0.0.1:$HTTP_PORT/v1/incidents"
echo
cat <<MSG

tocsin is running: http://127.0.0.1:$HTTP_PORT  (Kafka embedded at $BOOTSTRAP)

Watch updates live (Server-Sent Events):
    curl -N 'http://127.0.0.1:$HTTP_PORT/v1/events?components=playback'
WebSocket: ws://127.0.0.1:$HTTP_PORT/v1/ws?components=playback  (subprotocol tocsin.v1)

Then, in another terminal, publish the next state of the incident:
    printf 'demo-1\t{"event_id":"demo-1-v2-%s","incident_id":"demo-1","version":2,"status":"resolved","impact":"major","title":"Playback fails for some users","message":"Fixed.","components":["playback"],"regions":["eu-west"],"occurred_at":"%s"}\n' \$RANDOM \$(date -u +%Y-%m-%dT%H:%M:%SZ) | kcat -q -b $BOOTSTRAP -t tocsin.incidents -P -K \$'\t'

Metrics: curl http://127.0.0.1:$HTTP_PORT/metrics     Stop: bash deploy/quickstart.sh stop
MSG
