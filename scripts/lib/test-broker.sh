# Shell helpers for tests that run the broker as a real process.
# Source this file; it defines start_broker, stop_broker, kill_broker and free_port.
# Every broker gets an ephemeral port and its own data dir, and is stopped by PID.

FERROLOG_BIN="${FERROLOG_BIN:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target/release/ferrolog}"

free_port() {
    python3 "$(dirname "${BASH_SOURCE[0]}")/free_port.py"
}

# start_broker DATA_DIR PORT [--set k=v ...]: starts the broker, sets BROKER_PID, waits until it serves.
start_broker() {
    local data_dir="$1" port="$2"
    shift 2
    "$FERROLOG_BIN" --set "log.dirs=$data_dir" --set "listeners=PLAINTEXT://127.0.0.1:$port" \
        --set "metrics.listener=127.0.0.1:0" "$@" \
        >>"$data_dir.log" 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$BROKER_PID" 2>/dev/null; then
            echo "broker exited at start; log:" >&2
            cat "$data_dir.log" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "broker did not start listening on $port" >&2
    return 1
}

# stop_broker: SIGTERM (clean shutdown) and wait.
stop_broker() {
    if [ -n "${BROKER_PID:-}" ]; then
        kill -TERM "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=""
    fi
}

# kill_broker: SIGKILL (crash) and wait.
kill_broker() {
    if [ -n "${BROKER_PID:-}" ]; then
        kill -KILL "$BROKER_PID" 2>/dev/null || true
        wait "$BROKER_PID" 2>/dev/null || true
        BROKER_PID=""
    fi
}
