"""A minimal Kafka wire client for what the client libraries do not expose: Metadata
(v1) from one chosen broker, and DescribeQuorum (API 55, v0) as admin tools send it."""

import socket
import struct


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def _call(address, api_key, version, body, flexible_header):
    host, port = address.rsplit(":", 1)
    client_id = b"ferrolog-test"
    header = struct.pack(">hhih", api_key, version, 1, len(client_id)) + client_id
    if flexible_header:
        header += b"\x00"  # no tagged fields
    frame = header + body
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(struct.pack(">i", len(frame)) + frame)
        size = struct.unpack(">i", _read_exact(sock, 4))[0]
        return Reader(_read_exact(sock, size))


class Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        value = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return value[0] if len(value) == 1 else value

    def varint(self):
        shift = result = 0
        while True:
            byte = self.data[self.pos]
            self.pos += 1
            result |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return result
            shift += 7

    def string(self):
        length = self.take(">h")
        if length < 0:
            return None
        value = self.data[self.pos:self.pos + length].decode()
        self.pos += length
        return value

    def compact_string(self):
        length = self.varint() - 1
        if length < 0:
            return None
        value = self.data[self.pos:self.pos + length].decode()
        self.pos += length
        return value

    def skip_tags(self):
        for _ in range(self.varint()):
            self.varint()
            self.pos += self.varint()


def metadata(address):
    """{"brokers": {id: "host:port"}, "controller": id, "topics": {name: [(partition, leader, replicas, isr)]}}"""
    r = _call(address, 3, 1, struct.pack(">i", -1), flexible_header=False)
    r.take(">i")  # correlation id
    brokers = {}
    for _ in range(r.take(">i")):
        node_id = r.take(">i")
        host = r.string()
        port = r.take(">i")
        r.string()  # rack
        brokers[node_id] = f"{host}:{port}"
    controller = r.take(">i")
    topics = {}
    for _ in range(r.take(">i")):
        r.take(">h")  # error code
        name = r.string()
        r.take(">b")  # is internal
        partitions = []
        for _ in range(r.take(">i")):
            _error, index, leader = r.take(">hii")
            replicas = [r.take(">i") for _ in range(r.take(">i"))]
            isr = [r.take(">i") for _ in range(r.take(">i"))]
            partitions.append((index, leader, replicas, isr))
        topics[name] = sorted(partitions)
    return {"brokers": brokers, "controller": controller, "topics": topics}


def describe_quorum(address):
    """The __cluster_metadata partition's quorum state, as DescribeQuorum v0 reports it."""
    topic = b"__cluster_metadata"
    body = (bytes([2]) + bytes([len(topic) + 1]) + topic  # one topic, compact string
            + bytes([2]) + struct.pack(">i", 0) + b"\x00"  # one partition, index 0
            + b"\x00" + b"\x00")  # topic tags, request tags
    r = _call(address, 55, 0, body, flexible_header=True)
    r.take(">i")  # correlation id
    r.skip_tags()  # response header tags
    error = r.take(">h")
    result = {"error": error}
    for _ in range(r.varint() - 1):
        r.compact_string()
        for _ in range(r.varint() - 1):
            index, error, leader, epoch, high_watermark = r.take(">ihiiq")

            def replicas():
                out = {}
                for _ in range(r.varint() - 1):
                    replica, log_end_offset = r.take(">iq")
                    r.skip_tags()
                    out[replica] = log_end_offset
                return out

            voters, observers = replicas(), replicas()
            r.skip_tags()
            result.update(partition_error=error, leader=leader, epoch=epoch, high_watermark=high_watermark,
                          voters=voters, observers=observers)
        r.skip_tags()
    return result


def find_coordinator(address, group_id):
    """The coordinator of `group_id` as FindCoordinator v0 answers: (error, node id)."""
    key = group_id.encode()
    r = _call(address, 10, 0, struct.pack(">h", len(key)) + key, flexible_header=False)
    r.take(">i")  # correlation id
    error, node_id = r.take(">hi")
    return error, node_id
