"""Sends one command to a powercut-fs control socket and prints the answer line.

    powercut_ctl.py SOCKET COMMAND      (ping, stats, cut, quit)

Exits 1 when the answer is not ok (or, for stats, not JSON)."""

import socket
import sys


def main():
    path, command = sys.argv[1], sys.argv[2]
    with socket.socket(socket.AF_UNIX) as connection:
        connection.settimeout(60)
        connection.connect(path)
        connection.sendall(command.encode() + b"\n")
        answer = connection.makefile().readline().strip()
    print(answer)
    return 0 if answer.startswith("ok") or answer.startswith("{") else 1


if __name__ == "__main__":
    sys.exit(main())
