#!/usr/bin/env bash
# kcat (Debian's 1.7.1 on librdkafka 2.0.2) against a real broker process.
# Prints one line per check and a closing "N passed, N failed" line; exits non-zero on failure.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
source "$here/../../scripts/lib/test-broker.sh"

work="$(mktemp -d)"
port="$(free_port)"
data="$work/data"
mkdir -p "$data"
bootstrap="127.0.0.1:$port"
passed=0
failed=0
trap 'kill_broker; rm -rf "$work"' EXIT

check() { # check NAME COMMAND...
    local name="$1"
    shift
    if "$@"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}

N=100000
kc() { kcat -b "$bootstrap" -X broker.address.family=v4 "$@"; }

start_broker "$data" "$port" --set group.initial.rebalance.delay.ms=200 || exit 1

# The expected output of every topic: key<TAB>value<TAB>headers, one message a line.
python3 - "$work/expected.txt" "$N" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as out:
    for i in range(n):
        out.write(f"key-{i}\tvalue-{i:07d}-{'x' * (i % 50)}\n")
PY
sed 's/$/\tsource=kcat,trace=1/' "$work/expected.txt" > "$work/expected-with-headers.txt"

round_trip() { # round_trip CODEC
    local codec="$1" topic="codec-$1"
    kc -P -t "$topic" -z "$codec" -K '\t' -H source=kcat -H trace=1 -X linger.ms=20 -l "$work/expected.txt" || return 1
    kc -C -t "$topic" -o beginning -e -q -f '%k\t%s\t%h\n' > "$work/got-$codec.txt" || return 1
    cmp -s "$work/got-$codec.txt" "$work/expected-with-headers.txt"
}
for codec in none gzip snappy lz4 zstd; do
    check "produce+consume $N keyed messages with headers, compression=$codec" round_trip "$codec"
done

check "kcat -L lists the topics" bash -c "kcat -b $bootstrap -L | grep -q 'topic \"codec-zstd\" with 1 partitions'"

from_offset() {
    kc -C -t codec-lz4 -o 50000 -c 3 -q -f '%o %k\n' > "$work/offset.txt" || return 1
    printf '50000 key-50000\n50001 key-50001\n50002 key-50002\n' | cmp -s - "$work/offset.txt"
}
check "consume from offset 50000" from_offset

from_timestamp() {
    printf 'early-1\nearly-2\n' | kc -P -t times || return 1
    sleep 1.2
    local ts
    ts=$(($(date +%s%3N)))
    sleep 0.2
    printf 'late-1\nlate-2\n' | kc -P -t times || return 1
    kc -C -t times -o "s@$ts" -c 1 -q -f '%s\n' > "$work/ts.txt" || return 1
    [ "$(cat "$work/ts.txt")" = "late-1" ]
}
check "consume from a timestamp" from_timestamp

everything_back() { # everything_back LABEL
    for codec in none zstd; do
        kc -C -t "codec-$codec" -o beginning -e -q -f '%k\t%s\t%h\n' > "$work/again-$codec.txt" || return 1
        cmp -s "$work/again-$codec.txt" "$work/expected-with-headers.txt" || return 1
    done
}
balanced_consumer() {
    seq 1 20000 | kc -P -t grouped || return 1
    kc -G kgroup -X auto.offset.reset=earliest -e -q -f '%s\n' grouped > "$work/group1.txt" 2>/dev/null || return 1
    [ "$(wc -l < "$work/group1.txt")" -eq 20000 ] || return 1
    # The group committed its offsets: a second run reads nothing old, only what is new.
    seq 20001 20005 | kc -P -t grouped || return 1
    kc -G kgroup -X auto.offset.reset=earliest -e -q -f '%s\n' grouped > "$work/group2.txt" 2>/dev/null || return 1
    printf '20001\n20002\n20003\n20004\n20005\n' | cmp -s - "$work/group2.txt"
}
check "kcat -G balanced consumer reads a topic and resumes from its commits" balanced_consumer

stop_broker
start_broker "$data" "$port" || exit 1
check "after a clean restart every message reads back" everything_back
group_resumes_after_restart() {
    seq 20006 20007 | kc -P -t grouped || return 1
    kc -G kgroup -X auto.offset.reset=earliest -e -q -f '%s\n' grouped > "$work/group3.txt" 2>/dev/null || return 1
    printf '20006\n20007\n' | cmp -s - "$work/group3.txt"
}
check "after a restart the kcat group resumes from its committed offsets" group_resumes_after_restart
kill_broker
start_broker "$data" "$port" || exit 1
check "after SIGKILL and restart every message reads back" everything_back

huge_frame() { # huge_frame LENGTH_PREFIX BODY_BYTES: the broker must end the connection
    python3 - "$port" "$1" "$2" <<'PY'
import socket, struct, sys
port, length, body = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(10)
try:
    s.sendall(struct.pack(">i", length) + b"\0" * body)
except OSError:
    pass
try:
    while s.recv(65536):
        pass  # an error response may come first; then the broker closes
except ConnectionResetError:
    pass
except OSError:
    sys.exit(1)  # timed out: still open
PY
}
garbage() {
    python3 - "$port" <<'PY'
import os, socket, sys
port = int(sys.argv[1])
for _ in range(20):
    s = socket.create_connection(("127.0.0.1", port))
    try:
        s.sendall(os.urandom(4096))
        s.settimeout(2)
        s.recv(64)
    except OSError:
        pass
    s.close()
PY
}
still_serving() {
    kc -C -t codec-gzip -o 99990 -c 10 -q -f '%k\n' > "$work/alive.txt" || return 1
    [ "$(wc -l < "$work/alive.txt")" -eq 10 ] && kcat -b "$bootstrap" -L >/dev/null
}
check "a 10 MiB frame of zeros is refused and its connection closed" huge_frame $((10 * 1024 * 1024)) $((10 * 1024 * 1024))
check "a frame over socket.request.max.bytes closes its connection" huge_frame $((200 * 1024 * 1024)) 1024
garbage
check "after a 10 MiB frame and random garbage the broker still serves" still_serving
check "the broker process is still alive" kill -0 "$BROKER_PID"

echo "kcat: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
