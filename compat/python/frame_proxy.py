"""A TCP relay in front of a broker that records the size of every request a client
sends, and for Fetch (v7+) its session id and epoch. The broker advertises the relay's
address, so clients reach it for every request after bootstrap."""

import socket
import struct
import threading


def _varint(data, pos):
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def parse_request(frame):
    """(api_key, version, bytes on the wire, session_id, session_epoch) of one request
    frame (given without its length prefix); the session fields are None but for Fetch
    v7+."""
    api_key, version = struct.unpack_from(">hh", frame, 0)
    session = (None, None)
    if api_key == 1 and version >= 7:
        pos = 8
        (client_id_len,) = struct.unpack_from(">h", frame, pos)
        pos += 2 + max(client_id_len, 0)
        if version >= 12:  # request header v2: tagged fields
            count, pos = _varint(frame, pos)
            for _ in range(count):
                _, pos = _varint(frame, pos)
                size, pos = _varint(frame, pos)
                pos += size
        if version < 15:
            pos += 4  # replica_id
        pos += 4 + 4 + 4 + 1  # max_wait_ms, min_bytes, max_bytes, isolation_level
        session = struct.unpack_from(">ii", frame, pos)
    return (api_key, version, 4 + len(frame)) + tuple(session)


class FrameProxy:
    def __init__(self, listen_port, upstream_port):
        self.upstream = ("127.0.0.1", upstream_port)
        self.requests = []
        self.lock = threading.Lock()
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", listen_port))
        self.server.listen(64)
        self.sockets = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def fetches(self):
        with self.lock:
            return [r for r in self.requests if r[0] == 1]

    def _accept(self):
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.upstream)
            self.sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source, sink, requests):
        pending = b""
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                data = b""
            if not data:
                for sock in (source, sink):
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            if requests:
                pending += data
                while len(pending) >= 4:
                    (size,) = struct.unpack_from(">i", pending, 0)
                    if len(pending) < 4 + size:
                        break
                    with self.lock:
                        self.requests.append(parse_request(pending[4:4 + size]))
                    pending = pending[4 + size:]
            try:
                sink.sendall(data)
            except OSError:
                return

    def close(self):
        for sock in self.sockets:
            try:
                sock.close()
            except OSError:
                pass
