"""TLS and SASL with real clients: kcat (Debian), confluent-kafka and kafka-python over
SSL (client certificates required), SASL_PLAINTEXT and SASL_SSL with PLAIN and
SCRAM-SHA-512, SCRAM credentials made by confluent-kafka's AdminClient, refused logins,
a certificate from another CA, and garbage during the TLS handshake and SASL."""

import re
import socket
import struct
import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, NewTopic, ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)
from conftest import REPO
from kafka import KafkaConsumer, KafkaProducer
from kafka import TopicPartition as KafkaPythonTopicPartition
from kafka.errors import KafkaTimeoutError

PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_alice="alice-secret" user_admin="admin-secret";')


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("certs")
    subprocess.run([str(REPO / "scripts" / "dev-certs"), str(directory)], check=True,
                   capture_output=True)
    return directory


@pytest.fixture
def secure_broker(broker_factory, certs):
    settings = [
        f"ssl.keystore.location={certs / 'broker.pem'}",
        f"ssl.truststore.location={certs / 'ca.pem'}",
        "listener.name.ssl.ssl.client.auth=required",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
        f"listener.name.sasl_plaintext.plain.sasl.jaas.config={PLAIN_JAAS}",
        f"listener.name.sasl_ssl.plain.sasl.jaas.config={PLAIN_JAAS}",
    ]
    broker = broker_factory(settings, listeners=("SSL", "SASL_PLAINTEXT", "SASL_SSL"))
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    upsert = UserScramCredentialUpsertion(
        "carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), b"carol-secret")
    for future in admin.alter_user_scram_credentials([upsert]).values():
        future.result(timeout=30)
    return broker


def address(broker, listener):
    return f"127.0.0.1:{broker.ports[listener]}"


def client_settings(broker, certs, listener, mechanism=None, user=None, password=None,
                    client_cert="client"):
    """librdkafka settings for one listener, as a Kafka user writes them."""
    settings = {"bootstrap.servers": address(broker, listener), "security.protocol": listener}
    if listener in ("SSL", "SASL_SSL"):
        settings["ssl.ca.location"] = str(certs / "ca.pem")
    if listener == "SSL":
        settings["ssl.certificate.location"] = str(certs / f"{client_cert}-cert.pem")
        settings["ssl.key.location"] = str(certs / f"{client_cert}-key.pem")
    if mechanism:
        settings.update({"sasl.mechanism": mechanism, "sasl.username": user,
                         "sasl.password": password})
    return settings


def confluent_round_trip(settings, topic, n=200):
    producer = Producer({**settings, "acks": "all", "enable.idempotence": True})
    for i in range(n):
        producer.produce(topic, value=f"{topic}-{i}".encode())
    assert producer.flush(30) == 0
    consumer = Consumer({**settings, "group.id": f"g-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            got.append(message.value().decode())
    consumer.close()
    assert got == [f"{topic}-{i}" for i in range(n)]


def kafka_python_round_trip(topic, n=100, **settings):
    producer = KafkaProducer(acks="all", **settings)
    for i in range(n):
        producer.send(topic, value=f"{topic}-{i}".encode(), partition=0)
    producer.flush(30)
    producer.close()
    consumer = KafkaConsumer(enable_auto_commit=False, consumer_timeout_ms=5000, **settings)
    consumer.assign([KafkaPythonTopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    got = []
    deadline = time.time() + 30
    while len(got) < n and time.time() < deadline:
        for records in consumer.poll(timeout_ms=1000).values():
            got += [record.value.decode() for record in records]
    consumer.close()
    assert got == [f"{topic}-{i}" for i in range(n)]


def kcat_round_trip(settings, topic, n=50):
    options = []
    for key, value in settings.items():
        if key != "bootstrap.servers":
            options += ["-X", f"{key}={value}"]
    lines = "".join(f"{topic}-{i}\n" for i in range(n))
    subprocess.run(["kcat", "-P", "-b", settings["bootstrap.servers"], "-t", topic, "-p", "0",
                    *options], input=lines.encode(), check=True, timeout=60)
    out = subprocess.run(["kcat", "-C", "-b", settings["bootstrap.servers"], "-t", topic, "-p", "0",
                          "-o", "beginning", "-e", "-q", *options],
                         capture_output=True, check=True, timeout=60)
    assert out.stdout.decode().splitlines() == [f"{topic}-{i}" for i in range(n)]


def create_topic(broker, topic):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic(topic, 1, 1)]).values():
        future.result(timeout=30)


CASES = [
    ("SSL", None, None, None),
    ("SASL_PLAINTEXT", "PLAIN", "alice", "alice-secret"),
    ("SASL_PLAINTEXT", "SCRAM-SHA-512", "carol", "carol-secret"),
    ("SASL_SSL", "PLAIN", "alice", "alice-secret"),
    ("SASL_SSL", "SCRAM-SHA-512", "carol", "carol-secret"),
]


@pytest.mark.parametrize("listener,mechanism,user,password", CASES)
def test_confluent_kafka_and_kcat(secure_broker, certs, listener, mechanism, user, password):
    settings = client_settings(secure_broker, certs, listener, mechanism, user, password)
    topic = f"sec-{listener}-{mechanism or 'tls'}".lower()
    create_topic(secure_broker, topic)
    confluent_round_trip(settings, topic)
    kcat_topic = topic + "-kcat"
    create_topic(secure_broker, kcat_topic)
    kcat_round_trip(settings, kcat_topic)


@pytest.mark.parametrize("listener,mechanism,user,password", CASES)
def test_kafka_python(secure_broker, certs, listener, mechanism, user, password):
    settings = {"bootstrap_servers": address(secure_broker, listener),
                "security_protocol": listener}
    if listener in ("SSL", "SASL_SSL"):
        settings["ssl_cafile"] = str(certs / "ca.pem")
    if listener == "SSL":
        settings["ssl_certfile"] = str(certs / "client-cert.pem")
        settings["ssl_keyfile"] = str(certs / "client-key.pem")
    if mechanism:
        settings.update(sasl_mechanism=mechanism, sasl_plain_username=user,
                        sasl_plain_password=password)
    topic = f"kp-{listener}-{mechanism or 'tls'}".lower()
    create_topic(secure_broker, topic)
    kafka_python_round_trip(topic, **settings)


def login_error(settings):
    """The error librdkafka reports when it cannot log in (None if it can), without
    librdkafka's timing note."""
    errors = []
    producer = Producer({**settings, "error_cb": lambda error: errors.append(error)})
    try:
        producer.list_topics(timeout=3)
        return None
    except KafkaException:
        deadline = time.time() + 5
        while not errors and time.time() < deadline:
            producer.poll(0.2)
        if not errors:
            return "no error reported"
        return re.sub(r"\(after \d+ms in state \w+[^)]*\)", "", str(errors[0]))


def kafka_python_can_log_in(listener, certs, secure_broker, mechanism, user, password):
    producer = KafkaProducer(bootstrap_servers=address(secure_broker, listener),
                             security_protocol=listener, ssl_cafile=str(certs / "ca.pem"),
                             sasl_mechanism=mechanism, sasl_plain_username=user,
                             sasl_plain_password=password, api_version=(3, 0), max_block_ms=3000)
    try:
        producer.partitions_for("logins")
        return True
    except KafkaTimeoutError:
        return False
    finally:
        producer.close(timeout=5)


@pytest.mark.parametrize("listener", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism,user,password", [("PLAIN", "alice", "alice-secret"),
                                                     ("SCRAM-SHA-512", "carol", "carol-secret")])
def test_wrong_password_and_unknown_user_are_refused_alike(secure_broker, certs, listener,
                                                          mechanism, user, password):
    right = client_settings(secure_broker, certs, listener, mechanism, user, password)
    assert login_error(right) is None
    wrong_password = login_error({**right, "sasl.password": "guess"})
    unknown_user = login_error({**right, "sasl.username": "mallory"})
    assert wrong_password is not None and "Authentication failed" in wrong_password
    # The message never says which half was wrong.
    assert wrong_password.replace("mallory", user) == unknown_user.replace("mallory", user)
    # kafka-python is refused too.
    create_topic(secure_broker, "logins")
    assert kafka_python_can_log_in(listener, certs, secure_broker, mechanism, user, password)
    assert not kafka_python_can_log_in(listener, certs, secure_broker, mechanism, user, "guess")
    assert not kafka_python_can_log_in(listener, certs, secure_broker, mechanism, "mallory", password)
    # Each refusal is logged with the client's address.
    log = secure_broker.data_dir.with_suffix(".log").read_text(errors="replace")
    refusals = [line for line in log.splitlines() if "SASL authentication failed" in line]
    assert len(refusals) >= 4
    assert all(re.search(r"peer\S*=\S*127\.0\.0\.1:\d+", line) for line in refusals), refusals[:2]


def test_certificate_from_another_ca_is_refused(secure_broker, certs):
    good = client_settings(secure_broker, certs, "SSL")
    assert login_error(good) is None
    assert login_error(client_settings(secure_broker, certs, "SSL", client_cert="other-client")) is not None
    no_cert = {key: value for key, value in good.items() if not key.startswith("ssl.certificate")
               and not key.startswith("ssl.key")}
    assert login_error(no_cert) is not None
    result = subprocess.run(["kcat", "-L", "-b", good["bootstrap.servers"], "-m", "5",
                             "-X", "security.protocol=SSL",
                             "-X", f"ssl.ca.location={certs / 'ca.pem'}",
                             "-X", f"ssl.certificate.location={certs / 'other-client-cert.pem'}",
                             "-X", f"ssl.key.location={certs / 'other-client-key.pem'}"],
                            capture_output=True, timeout=60)
    assert result.returncode != 0


def closed_by_peer(sock, timeout=10):
    """Reads until the peer closes; True if it did within the timeout."""
    sock.settimeout(timeout)
    try:
        while sock.recv(4096):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def frame(api_key, version, body):
    client_id = b"garbage-test"
    header = struct.pack(">hhih", api_key, version, 7, len(client_id)) + client_id
    return struct.pack(">i", len(header) + len(body)) + header + body


def test_garbage_in_tls_handshake_and_sasl_closes_only_that_connection(secure_broker, certs):
    # A client that stays connected and keeps working throughout.
    settings = client_settings(secure_broker, certs, "SASL_SSL", "PLAIN", "alice", "alice-secret")
    create_topic(secure_broker, "steady")
    producer = Producer({**settings, "acks": "all"})
    producer.produce("steady", value=b"before")
    assert producer.flush(30) == 0

    # Garbage where a TLS ClientHello belongs.
    for garbage in [b"\x16\x03\x01\x00\x05hello-garbage" * 20, b"GET / HTTP/1.1\r\n\r\n",
                    b"\x16\x03\x01\x00\x2e\x01\x00\x00\x2a\x03\x03" + b"\xff" * 40]:
        for listener in ("SSL", "SASL_SSL"):
            with socket.create_connection(("127.0.0.1", secure_broker.ports[listener])) as sock:
                sock.sendall(garbage)
                assert closed_by_peer(sock, timeout=5), (listener, garbage[:16])
    # A ClientHello cut short and never finished: dropped at the handshake timeout (10 s).
    with socket.create_connection(("127.0.0.1", secure_broker.ports["SSL"])) as sock:
        sock.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xff" * 40)
        assert closed_by_peer(sock, timeout=15)

    sasl = ("127.0.0.1", secure_broker.ports["SASL_PLAINTEXT"])
    # A request other than ApiVersions/SaslHandshake before authenticating.
    with socket.create_connection(sasl) as sock:
        sock.sendall(frame(3, 1, struct.pack(">i", -1)))  # Metadata v1, all topics
        assert closed_by_peer(sock)
    # SaslAuthenticate without a handshake, and with a garbage PLAIN token.
    with socket.create_connection(sasl) as sock:
        sock.sendall(frame(36, 1, struct.pack(">i", 4) + b"\x00\x01\x02\x03"))
        assert closed_by_peer(sock)
    with socket.create_connection(sasl) as sock:
        sock.sendall(frame(17, 1, struct.pack(">h", 5) + b"PLAIN"))
        sock.sendall(frame(36, 1, struct.pack(">i", 6) + b"\xff\xfe\x00\x00\x00\x00"))
        assert closed_by_peer(sock)
    # A SCRAM exchange with a garbage final message.
    with socket.create_connection(sasl) as sock:
        sock.sendall(frame(17, 1, struct.pack(">h", 13) + b"SCRAM-SHA-512"))
        first = b"n,,n=carol,r=abcdefgh"
        sock.sendall(frame(36, 1, struct.pack(">i", len(first)) + first))
        sock.sendall(frame(36, 1, struct.pack(">i", 9) + b"c=,r=,p=!"))
        assert closed_by_peer(sock)
    # A frame that claims to be huge, before authenticating.
    with socket.create_connection(sasl) as sock:
        sock.sendall(struct.pack(">i", 0x7fffffff) + b"\x00" * 64)
        assert closed_by_peer(sock)

    producer.produce("steady", value=b"after")
    assert producer.flush(30) == 0
    consumer = Consumer({**settings, "group.id": "steady", "auto.offset.reset": "earliest"})
    consumer.assign([TopicPartition("steady", 0, 0)])
    got = []
    deadline = time.time() + 30
    while len(got) < 2 and time.time() < deadline:
        message = consumer.poll(1.0)
        if message is not None and message.error() is None:
            got.append(message.value())
    consumer.close()
    assert got == [b"before", b"after"]


def test_scram_credentials_are_described_and_survive_a_restart(secure_broker, certs):
    admin = AdminClient({"bootstrap.servers": secure_broker.bootstrap})
    described = admin.describe_user_scram_credentials(["carol"])
    infos = described["carol"].result(timeout=30).scram_credential_infos
    assert [(info.mechanism, info.iterations) for info in infos] == [(ScramMechanism.SCRAM_SHA_512, 8192)]
    with pytest.raises(KafkaException):
        admin.describe_user_scram_credentials(["nobody"])["nobody"].result(timeout=30)
    secure_broker.stop()
    secure_broker.start()
    settings = client_settings(secure_broker, certs, "SASL_PLAINTEXT", "SCRAM-SHA-512", "carol",
                               "carol-secret")
    assert login_error(settings) is None


def controller_call(host, port, certs, cert=None, key=None, tls=True):
    """Sends DescribeQuorum to a CONTROLLER listener; its JSON answer, or None when the
    listener closes the connection (or refuses the handshake) instead of answering."""
    import json
    import ssl
    sock = socket.create_connection((host, port), timeout=10)
    try:
        if tls:
            context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
            if cert:
                context.load_cert_chain(str(cert), str(key) if key else None)
            sock = context.wrap_socket(sock, server_hostname=host)
        body = json.dumps({"Controller": "DescribeQuorum"}).encode()
        sock.sendall(struct.pack(">I", len(body)) + body)
        header = b""
        while len(header) < 4:
            chunk = sock.recv(4 - len(header))
            if not chunk:
                return None
            header += chunk
        size = struct.unpack(">I", header)[0]
        answer = b""
        while len(answer) < size:
            chunk = sock.recv(size - len(answer))
            if not chunk:
                return None
            answer += chunk
        return json.loads(answer)
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return None
    finally:
        sock.close()


def test_replication_and_quorum_over_tls_with_acls(cluster_factory, certs):
    """Three nodes whose only client listener (also the inter-broker one) is SASL_SSL
    and whose CONTROLLER listener is SSL with client certificates required, with ACLs
    on: the quorum forms over TLS, followers log in as User:broker (a super user),
    fetch, join the ISR, and acks=all writes with min.insync.replicas=2 succeed. The
    CONTROLLER listener answers the brokers' certificate (a super user) and refuses a
    trusted certificate without ClusterAction, another CA's, none, and plain TCP."""
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            'username="broker" password="broker-secret" '
            'user_broker="broker-secret" user_alice="alice-secret";')
    config = "\n".join([
        "listener.security.protocol.map: PLAINTEXT:SASL_SSL,CONTROLLER:SSL",
        f"ssl.keystore.location: {certs / 'broker.pem'}",
        f"ssl.truststore.location: {certs / 'ca.pem'}",
        "listener.name.controller.ssl.client.auth: required",
        "sasl.mechanism.inter.broker.protocol: PLAIN",
        f"listener.name.plaintext.plain.sasl.jaas.config: '{jaas}'",
        "authorizer.class.name: org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users: User:broker;User:CN=localhost,O=ferrolog",
        "",
    ])
    cluster = cluster_factory(3, settings=("min.insync.replicas=2",), name="sasl-ssl", config=config)
    nodes = [line.split() for line in (cluster.dir / "nodes").read_text().splitlines()]
    settings = {"bootstrap.servers": ",".join(f"127.0.0.1:{fields[1]}" for fields in nodes),
                "security.protocol": "SASL_SSL", "ssl.ca.location": str(certs / "ca.pem"),
                "sasl.mechanism": "PLAIN", "sasl.username": "broker", "sasl.password": "broker-secret"}
    admin = AdminClient(settings)
    for future in admin.create_topics([NewTopic("replicated", 1, 3)]).values():
        future.result(timeout=60)
    deadline = time.time() + 60
    isr = []
    while time.time() < deadline:
        partition = admin.list_topics("replicated", timeout=10).topics["replicated"].partitions[0]
        isr = partition.isrs
        if len(isr) == 3:
            break
        time.sleep(0.5)
    assert sorted(isr) == sorted(int(fields[0]) for fields in nodes), isr
    confluent_round_trip(settings, "replicated", n=300)
    # alice has no ACLs: refused.
    alice = {**settings, "sasl.username": "alice", "sasl.password": "alice-secret"}
    producer = Producer({**alice, "message.timeout.ms": 10000})
    errors = []
    producer.produce("replicated", value=b"nope", on_delivery=lambda error, _msg: errors.append(error))
    producer.flush(30)
    assert [error.code() for error in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED], errors
    # The CONTROLLER listener itself.
    # Every node answers the brokers' certificate: the active controller with the
    # quorum, the others by naming it.
    answers = [controller_call(fields[3], int(fields[2]), certs, certs / "broker.pem") for fields in nodes]
    assert all(answer is not None and "Controller" in answer for answer in answers), answers
    quorums = [answer["Controller"]["Ok"]["Quorum"] for answer in answers if "Ok" in answer["Controller"]]
    assert len(quorums) == 1 and len(quorums[0]["voters"]) == 3, answers
    controller = (nodes[0][3], int(nodes[0][2]))
    assert controller_call(*controller, certs, certs / "client.pem") is None
    assert controller_call(*controller, certs, certs / "other-client-cert.pem",
                           certs / "other-client-key.pem") is None
    assert controller_call(*controller, certs) is None
    assert controller_call(*controller, certs, tls=False) is None
    log = (cluster.dir / f"node-{nodes[0][0]}.log").read_text()
    assert "CONTROLLER connection refused" in log and "User:CN=client,O=ferrolog" in log
