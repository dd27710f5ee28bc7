#!/usr/bin/env bash
# A local distributed Tiergate on loopback:
#   nginx (LB, :8080) -> two `tiergate up` nodes (:8181, :8182; admin :8191, :8192)
#   nodes share Redis (rate limits; own redis-server on :6390) and PostgreSQL
#   (registry, database tiergate_cluster on 127.0.0.1:5432); every tier API runs as
#   its own uvicorn service (:9100...).
#
#   deploy/cluster.sh up | down | status
#
# Ports and URLs can be changed with the variables below (environment wins).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="${TG_RUN_DIR:-$ROOT/deploy/run}"
PY="${TG_PYTHON:-$ROOT/.venv/bin/python}"
LB_PORT="${TG_LB_PORT:-8080}"
NODES="${TG_NODES:-8181:8191,8182:8192}"          # public:admin per gateway node
API_PORT="${TG_API_PORT:-9100}"
REDIS_PORT="${TG_REDIS_PORT:-6390}"
REDIS_URL="${TG_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}"
PG_ADMIN_URL="${TG_PG_ADMIN_URL:-postgresql://postgres@127.0.0.1:5432/postgres}"
PG_DB="${TG_PG_DB:-tiergate_cluster}"
REGISTRY_URL="${TIERGATE_REGISTRY_URL:-postgresql://postgres@127.0.0.1:5432/$PG_DB}"
ADMIN_TOKEN="${TIERGATE_ADMIN_TOKEN:-cluster-admin-token}"
SOURCE="${TG_SOURCE_CONFIG:-$ROOT/tiergate.yaml}"       # the estate to distribute
STORAGE_TIMEOUT="${TG_STORAGE_TIMEOUT:-}"                 # rate_limiting.storage_timeout

say() { printf 'cluster: %s\n' "$*"; }

wait_http() {  # url, seconds [any: any HTTP answer will do, not only 2xx]
    local deadline=$((SECONDS + $2)) fail=-f
    [[ "${3:-}" == any ]] && fail=
    until curl $fail -sS -o /dev/null "$1" 2>/dev/null; do
        if ((SECONDS > deadline)); then say "no answer from $1 (see $RUN/*.log)"; return 1; fi
        sleep 0.2
    done
}

start() {  # name, command...  (records the pid in $RUN/name.pid)
    local name="$1"; shift
    "$@" >"$RUN/$name.log" 2>&1 &
    echo $! >"$RUN/$name.pid"
}

up() {
    command -v nginx >/dev/null || { say "nginx missing: apt-get install nginx-light"; exit 1; }
    [[ -x "$PY" ]] || { say "no $PY: run 'make test' (or set TG_PYTHON) first"; exit 1; }
    if [[ -e "$RUN/nginx.pid" ]]; then say "already up (deploy/cluster.sh down first)"; exit 1; fi
    local ports=("$LB_PORT" ${NODES//[,:]/ })
    [[ -n "${TG_REDIS_URL:-}" ]] || ports+=("$REDIS_PORT")
    for port in "${ports[@]}"; do
        if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            say "port $port is in use; pick others (TG_LB_PORT, TG_NODES, TG_REDIS_PORT)"; exit 1
        fi
    done
    mkdir -p "$RUN/nginx-tmp" "$RUN/var"
    trap 'say "start-up failed; stopping what was started"; down' ERR

    if [[ -z "${TG_REDIS_URL:-}" ]]; then
        command -v redis-server >/dev/null || { say "redis-server missing: apt-get install redis-server"; exit 1; }
        start redis redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$RUN"
    fi

    if [[ "$REGISTRY_URL" == postgresql://* ]]; then
        psql "$PG_ADMIN_URL" -tAc "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'" | grep -q 1 \
            || psql "$PG_ADMIN_URL" -qc "CREATE DATABASE \"$PG_DB\"" \
            || { say "cannot create database $PG_DB at $PG_ADMIN_URL"; exit 1; }
    fi

    "$PY" "$ROOT/deploy/make_config.py" "$RUN" --source "$SOURCE" --nodes "$NODES" \
        --api-port "$API_PORT" --issuer "http://127.0.0.1:$LB_PORT" ${STORAGE_TIMEOUT:+--storage-timeout "$STORAGE_TIMEOUT"}

    local lb_url="http://127.0.0.1:$LB_PORT" credentials
    while read -r name app port needs; do
        [[ -n "$name" ]] || continue
        credentials=()
        if [[ "$needs" == service ]]; then
            # Its own service identity svc-<api>, as embedded mode provisions it (kind
            # service, its tier, the scopes of the tier below); re-keyed on every `up`.
            credentials=($(cd "$ROOT" && TIERGATE_REGISTRY_URL="$REGISTRY_URL" "$PY" -m gateway.cli \
                clients create "$name" --service --json --config "$RUN/node1.yaml" \
                | "$PY" -c 'import json, sys; c = json.load(sys.stdin); print(c["client_id"], c["client_secret"])'))
            [[ ${#credentials[@]} -eq 2 ]] || { say "cannot provision svc-$name"; false; }
        fi
        # Tier APIs call the tier below through the load balancer, like any client.
        (cd "$ROOT" && export TIERGATE_GATEWAY_URL="$lb_url" TIERGATE_VAR_DIR="$RUN/var" \
            && if [[ ${#credentials[@]} -eq 2 ]]; then export TIERGATE_CLIENT_ID="${credentials[0]}" \
                TIERGATE_CLIENT_SECRET="${credentials[1]}" TIERGATE_TOKEN_URL="$lb_url/oauth/token"; fi \
            && start "api-$name" "$PY" -m uvicorn "$app" --host 127.0.0.1 --port "$port" \
            --log-level warning --no-access-log)
    done <"$RUN/services.txt"
    while read -r name app port needs; do
        # Tier APIs have no /healthz: any HTTP answer means the service is up.
        [[ -n "$name" ]] && wait_http "http://127.0.0.1:$port/healthz" 30 any
    done <"$RUN/services.txt"

    local index=0 upstreams=""
    for pair in ${NODES//,/ }; do
        index=$((index + 1))
        (cd "$ROOT" && TIERGATE_LIMITS_STORAGE="$REDIS_URL" TIERGATE_REGISTRY_URL="$REGISTRY_URL" \
            TIERGATE_ADMIN_TOKEN="$ADMIN_TOKEN" \
            start "node$index" "$PY" -m gateway.cli up --config "$RUN/node$index.yaml")
        upstreams+="        server 127.0.0.1:${pair%%:*} max_fails=1 fail_timeout=2s;"$'\n'
    done
    index=0
    for pair in ${NODES//,/ }; do
        index=$((index + 1))
        wait_http "http://127.0.0.1:${pair%%:*}/readyz" 60
        kill -0 "$(cat "$RUN/node$index.pid")" 2>/dev/null \
            || { say "node$index exited (see $RUN/node$index.log)"; false; }
    done

    sed -e "s|@RUN@|$RUN|g" -e "s|@LB_PORT@|$LB_PORT|g" "$ROOT/deploy/nginx.conf.template" \
        | awk -v ups="$upstreams" '{ if ($0 == "@UPSTREAMS@") printf "%s", ups; else print }' \
        >"$RUN/nginx.conf"
    nginx -p "$RUN" -c "$RUN/nginx.conf"
    wait_http "$lb_url/healthz" 10
    trap - ERR
    say "up: $lb_url (nodes ${NODES}; redis $REDIS_URL; registry $REGISTRY_URL)"
    say "try: for i in \$(seq 120); do curl -s -o /dev/null -w '%{http_code}\\n' $lb_url/experience/echo/v1/hi; done | sort | uniq -c"
}

down() {
    if [[ -e "$RUN/nginx.pid" ]]; then
        nginx -p "$RUN" -c "$RUN/nginx.conf" -s quit || true
        rm -f "$RUN/nginx.pid"
    fi
    local pids=()
    for pidfile in "$RUN"/*.pid; do
        [[ -e "$pidfile" ]] || continue
        pids+=("$(cat "$pidfile")")
        kill "${pids[-1]}" 2>/dev/null || true
        rm -f "$pidfile"
    done
    local deadline=$((SECONDS + 30))  # gateways finish in-flight requests first
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    done
    say "down"
}

status() {
    for pidfile in "$RUN"/*.pid; do
        [[ -e "$pidfile" ]] || { say "not running"; return 0; }
        local name; name="$(basename "$pidfile" .pid)"
        if kill -0 "$(cat "$pidfile")" 2>/dev/null; then say "$name: running"; else say "$name: stopped"; fi
    done
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: deploy/cluster.sh up|down|status" >&2; exit 2 ;;
esac
