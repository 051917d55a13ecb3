"""A free TCP port for a test server that may be stopped and started again on it.

A port the kernel hands out for bind(("", 0)) lies in its ephemeral range, the same
range it draws source ports of outgoing connections and other servers' port-0 binds
from. Once a node is down, a peer reconnecting to it (or a neighbour's port-0 listener)
can take its port, and the node cannot come back. So ports are drawn at random below
the ephemeral range, where the kernel never allocates on its own, and checked free.

    python3 scripts/lib/free_port.py [HOST [COUNT]]    prints COUNT distinct ports (default 1)

Within one process no port is handed out twice.
"""

import random
import socket
import sys

LOWEST = 10000
_given = set()


def ephemeral_start():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port(host="127.0.0.1"):
    top = max(ephemeral_start(), LOWEST + 1000)
    for _ in range(1000):
        port = random.randrange(LOWEST, top)
        if port in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free port on {host} in [{LOWEST}, {top})")


if __name__ == "__main__":
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    print(" ".join(str(free_port(host)) for _ in range(count)))
