"""A minimal Kafka wire client for what the client libraries do not expose: Metadata
(v1) from one chosen broker, DescribeQuorum (API 55, v0) as admin tools send it, and
Produce (v3) to one chosen broker, which a client library may reroute."""

import socket
import struct
import time


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("connection closed")
        data += chunk
    return data


def _call(address, api_key, version, body, flexible_header, timeout=10):
    host, port = address.rsplit(":", 1)
    client_id = b"ferrolog-test"
    header = struct.pack(">hhih", api_key, version, 1, len(client_id)) + client_id
    if flexible_header:
        header += b"\x00"  # no tagged fields
    frame = header + body
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
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


def find_coordinator(address, key, key_type=0):
    """The coordinator of a group (key type 0, FindCoordinator v0) or a transactional id
    (key type 1, v1) as this broker answers: (error, node id)."""
    encoded = key.encode()
    if key_type == 0:
        r = _call(address, 10, 0, struct.pack(">h", len(encoded)) + encoded, flexible_header=False)
        r.take(">i")  # correlation id
        error, node_id = r.take(">hi")
        return error, node_id
    body = struct.pack(">h", len(encoded)) + encoded + struct.pack(">b", key_type)
    r = _call(address, 10, 1, body, flexible_header=False)
    r.take(">i")  # correlation id
    r.take(">i")  # throttle time
    error = r.take(">h")
    r.string()  # error message
    return error, r.take(">i")


def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _varint(value):
    value = (value << 1) ^ (value >> 63)  # zigzag
    out = b""
    while value > 0x7F:
        out += bytes([(value & 0x7F) | 0x80])
        value >>= 7
    return out + bytes([value])


def record_batch(value, timestamp=None):
    """One uncompressed record without key or headers, in a magic-2 batch (stamped now,
    or at `timestamp`)."""
    record = (b"\x00" + _varint(0) + _varint(0) + _varint(-1)
              + _varint(len(value)) + value + _varint(0))
    record = _varint(len(record)) + record
    now = int(time.time() * 1000) if timestamp is None else timestamp
    after_crc = struct.pack(">hiqqqhii", 0, 0, now, now, -1, -1, -1, 1) + record
    header_rest = struct.pack(">ib", -1, 2)  # partition leader epoch, magic
    crc = struct.pack(">I", crc32c(after_crc))
    batch_length = len(header_rest) + len(crc) + len(after_crc)
    return struct.pack(">qi", 0, batch_length) + header_rest + crc + after_crc


def produce_error(address, topic, partition, timestamp):
    """The error code of a Produce v3 (acks=1) of one record stamped `timestamp`."""
    return produce(address, topic, partition, b"x", 1, 5000, timestamp=timestamp)[0]


def produce(address, topic, partition, value, acks, timeout_ms, timestamp=None):
    """Produce v3 of one record to exactly this broker (no client-side rerouting):
    (error code, base offset)."""
    batch = record_batch(value, timestamp)
    name = topic.encode()
    body = (struct.pack(">hhi", -1, acks, timeout_ms)  # null transactional id
            + struct.pack(">ih", 1, len(name)) + name
            + struct.pack(">ii", 1, partition) + struct.pack(">i", len(batch)) + batch)
    r = _call(address, 0, 3, body, flexible_header=False, timeout=timeout_ms / 1000 + 10)
    r.take(">i")  # correlation id
    r.take(">i")  # one topic
    r.string()
    r.take(">i")  # one partition
    _index, error, base_offset = r.take(">ihq")
    return error, base_offset


def _string(value):
    if value is None:
        return struct.pack(">h", -1)
    data = value.encode()
    return struct.pack(">h", len(data)) + data


def incremental_alter_configs(address, resource_type, name, changes):
    """IncrementalAlterConfigs v0 of one resource (type 4 BROKER, 8 BROKER_LOGGER, ...):
    `changes` maps a config to its value (SET) or None (DELETE). Returns (error, message)."""
    configs = b"".join(_string(key) + struct.pack(">b", 0 if value is not None else 1) + _string(value)
                       for key, value in changes.items())
    body = (struct.pack(">i", 1) + struct.pack(">b", resource_type) + _string(name)
            + struct.pack(">i", len(changes)) + configs + b"\x00")
    r = _call(address, 44, 0, body, flexible_header=False)
    r.take(">i")  # correlation id
    r.take(">i")  # throttle time
    r.take(">i")  # one response
    error = r.take(">h")
    return error, r.string()


def alter_client_quotas(address, entity, quotas):
    """AlterClientQuotas v0 of one entity ({"client-id": "app"}, a None name for the
    default): `quotas` maps a key to its value, or None to remove it. Returns (error, message)."""
    parts = b"".join(_string(kind) + _string(name) for kind, name in entity.items())
    ops = b"".join(_string(key) + struct.pack(">d", value or 0.0) + struct.pack(">?", value is None)
                   for key, value in quotas.items())
    body = (struct.pack(">i", 1) + struct.pack(">i", len(entity)) + parts + struct.pack(">i", len(quotas)) + ops
            + b"\x00")
    r = _call(address, 49, 0, body, flexible_header=False)
    r.take(">i")  # correlation id
    r.take(">i")  # throttle time
    r.take(">i")  # one entry
    error = r.take(">h")
    return error, r.string()


def describe_client_quotas(address, components, strict=False):
    """DescribeClientQuotas v0: `components` are (entity type, match type, name).
    Returns (error, [({type: name}, {key: value})])."""
    body = struct.pack(">i", len(components)) + b"".join(
        _string(kind) + struct.pack(">b", match_type) + _string(name) for kind, match_type, name in components)
    body += struct.pack(">?", strict)
    r = _call(address, 48, 0, body, flexible_header=False)
    r.take(">i")  # correlation id
    r.take(">i")  # throttle time
    error = r.take(">h")
    r.string()
    entries = []
    for _ in range(max(r.take(">i"), 0)):
        entity = {}
        for _ in range(r.take(">i")):
            kind = r.string()
            entity[kind] = r.string()
        values = {}
        for _ in range(r.take(">i")):
            key = r.string()
            values[key] = r.take(">d")
        entries.append((entity, values))
    return error, entries
