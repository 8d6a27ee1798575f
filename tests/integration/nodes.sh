# nodes.sh - start, stop and drive real gkxd nodes in integration tests (sourced after lib.sh).
# Part of gokart-exchange; MIT licence.
#
# A node NAME lives in $T/NAME with its log in $T/NAME.log and its card in $T/NAME.card;
# node_pid NAME is its process id while it runs.

# free_port: prints a TCP port on 127.0.0.1 that is free right now, below the ephemeral range
# from which other suites' client connections take theirs (free_port.py says why).
free_port() {
    /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/free_port.py"
}

# node_init NAME ROLE [ACCEPT]: gkx init with free ports; writes $T/NAME.card.
node_init() {
    local name=$1 role=$2 accept=${3:-listed} postback=()
    [ "$role" = advertiser ] && postback=(--postback "127.0.0.1:$(free_port)")
    "$GKX" init --dir "$T/$name" --role "$role" --name "$name" "${postback[@]}" \
        --listen "tcp://127.0.0.1:$(free_port)" --api "127.0.0.1:$(free_port)" >/dev/null || return 1
    sed -i "s/^accept = listed$/accept = $accept/" "$T/$name/gkx.conf"
    "$GKX" --dir "$T/$name" card --json >"$T/$name.card"
}

# api NAME METHOD PATH [JSON]: one API request with the node's token; prints the body.
api() {
    local name=$1 method=$2 path=$3 body=${4:-}
    local addr; addr=$(awk -F' = ' '/^\[api\]/ {s=1} s && $1 == "listen" {print $2; exit}' "$T/$name/gkx.conf")
    if [ -n "$body" ]; then
        curl -sS -X "$method" -H "Authorization: Bearer $(cat "$T/$name/api.token")" \
            -H 'Content-Type: application/json' --data "$body" "http://$addr$path"
    else
        curl -sS -X "$method" -H "Authorization: Bearer $(cat "$T/$name/api.token")" "http://$addr$path"
    fi
}

# node_start NAME: runs gkxd in the background and waits until its API answers.
node_start() {
    local name=$1
    "$GKXD" --dir "$T/$name" 2>>"$T/$name.log" &
    local pid=$!
    _pids+=("$pid")
    echo "$pid" >"$T/$name.pid"
    wait_for 10 api "$name" GET /v1/status || { echo "$name did not start:"; tail -5 "$T/$name.log"; return 1; }
}

# node_pid NAME: the running node's process id.
node_pid() { cat "$T/$1.pid"; }

# node_stop NAME: SIGTERM, then waits; fails unless the node exits 0.
node_stop() {
    local pid; pid=$(node_pid "$1")
    kill -TERM "$pid" && wait "$pid"
}

# peer NAME OTHER: NAME adds OTHER's card.
peer() { api "$1" POST /v1/peers "$(cat "$T/$2.card")" | grep -q '"id"'; }

# digest NAME PID: the offer's state digest as NAME's node serves it.
digest() { api "$1" GET "/v1/partnerships/$2/offer" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["digest"])'; }

# edit NAME PID EDIT...: one offer edit through the API; fails unless it is applied.
edit() {
    local name=$1 pid=$2; shift 2
    local edits; edits=$(/usr/bin/python3 -c 'import json, sys; print(json.dumps({"edits": sys.argv[1:]}))' "$@")
    api "$name" PATCH "/v1/partnerships/$pid/offer" "$edits" | grep -q '"digest"'
}

# same_digest A B PID: both nodes serve the same digest for the partnership.
same_digest() { local x y; x=$(digest "$1" "$3") && y=$(digest "$2" "$3") && [ -n "$x" ] && [ "$x" = "$y" ]; }

# card_id NAME: the node id of NAME.
card_id() { /usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["id"])' "$T/$1.card"; }

# heads NAME PID: prints "ADV_SEQ PUB_SEQ" of a partnership in NAME's store (offline read).
heads() {
    "$GKX" --dir "$T/$1" log list --json | /usr/bin/python3 -c '
import json, sys
for p in json.load(sys.stdin):
    if p["pid"] == sys.argv[1]:
        print(p["advertiser_seq"], p["publisher_seq"], p["status"])
' "$2"
}
