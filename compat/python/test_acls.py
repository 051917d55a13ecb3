"""ACLs with confluent-kafka's AdminClient, as a Kafka user manages them: SCRAM
credentials and ACLs created by a super user; prefixed Write, group Read, deny over
allow, super users, and what Metadata and ListGroups show."""

import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import (AclBinding, AclBindingFilter, AclOperation, AclPermissionType,
                                   AdminClient, NewTopic, ResourcePatternType, ResourceType,
                                   ScramCredentialInfo, ScramMechanism,
                                   UserScramCredentialUpsertion)

JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
        'user_admin="admin-secret" user_alice="alice-secret" user_bob="bob-secret";')


@pytest.fixture
def acl_broker(broker_factory):
    return broker_factory([
        "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users=User:admin",
        f"listener.name.sasl_plaintext.plain.sasl.jaas.config={JAAS}",
    ], listeners=("SASL_PLAINTEXT",))


def login(broker, user, password, mechanism="PLAIN"):
    return {"bootstrap.servers": f"127.0.0.1:{broker.ports['SASL_PLAINTEXT']}",
            "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": mechanism,
            "sasl.username": user, "sasl.password": password}


def wait_all(futures):
    return {key: future.result(timeout=30) for key, future in futures.items()}


def allow(kind, name, principal, operation, pattern=ResourcePatternType.LITERAL,
          permission=AclPermissionType.ALLOW):
    return AclBinding(kind, name, pattern, principal, "*", operation, permission)


def produce(settings, topic, values):
    """Produces values; returns the delivery error codes (None for delivered)."""
    outcomes = []
    producer = Producer({**settings, "acks": "all", "message.timeout.ms": 10000})
    for value in values:
        producer.produce(topic, value=value,
                         on_delivery=lambda error, _msg: outcomes.append(error and error.code()))
    producer.flush(30)
    return outcomes


def consume(settings, topic, group, expected, timeout=20):
    """(values read, the first error code seen) with a group subscription."""
    consumer = Consumer({**settings, "group.id": group, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    values, error = [], None
    deadline = time.time() + timeout
    while len(values) < expected and time.time() < deadline and error is None:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            if message.error().code() != KafkaError._PARTITION_EOF:
                error = message.error().code()
            continue
        values.append(message.value())
    consumer.close()
    return values, error


def high_watermark(settings, topic):
    consumer = Consumer({**settings, "group.id": "inspect"})
    low, high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    consumer.close()
    return high


def test_acls_as_kafka_users_manage_them(acl_broker):
    admin_login = login(acl_broker, "admin", "admin-secret")
    admin = AdminClient(admin_login)
    wait_all(admin.create_topics([NewTopic(name, 1, 1) for name in
                                  ("orders.eu", "orders.secret", "payments")]))
    # SCRAM credentials for dave, made by the admin client.
    wait_all(admin.alter_user_scram_credentials([UserScramCredentialUpsertion(
        "dave", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), b"dave-secret")]))
    dave = login(acl_broker, "dave", "dave-secret", "SCRAM-SHA-512")
    alice = login(acl_broker, "alice", "alice-secret")

    # Nothing is allowed before any ACL exists (allow.everyone.if.no.acl.found=false).
    assert produce(alice, "orders.eu", [b"x"]) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]

    wait_all(admin.create_acls([
        allow(ResourceType.TOPIC, "orders.", "User:alice", AclOperation.WRITE,
              pattern=ResourcePatternType.PREFIXED),
        allow(ResourceType.TOPIC, "*", "User:dave", AclOperation.READ),
        allow(ResourceType.TOPIC, "orders.secret", "User:dave", AclOperation.READ,
              permission=AclPermissionType.DENY),
    ]))
    described = admin.describe_acls(AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY,
        AclPermissionType.ANY)).result(timeout=30)
    assert len(described) == 3
    assert any(binding.name == "orders." and binding.resource_pattern_type == ResourcePatternType.PREFIXED
               for binding in described)

    # Write on a prefix: allowed under it, refused elsewhere, and the refused topic holds nothing.
    assert produce(alice, "orders.eu", [b"eu-1", b"eu-2"]) == [None, None]
    assert produce(alice, "payments", [b"p-1", b"p-2"]) == [KafkaError.TOPIC_AUTHORIZATION_FAILED] * 2
    assert high_watermark(admin_login, "payments") == 0
    assert high_watermark(admin_login, "orders.eu") == 2

    # Metadata shows alice only what she may describe (Write implies Describe).
    visible = set(Producer(alice).list_topics(timeout=10).topics)
    assert {"orders.eu", "orders.secret"} <= visible and "payments" not in visible

    # Read on the topic but not on the group: GROUP_AUTHORIZATION_FAILED.
    values, error = consume(dave, "orders.eu", "dave-group", 2)
    assert error == KafkaError.GROUP_AUTHORIZATION_FAILED and values == []
    wait_all(admin.create_acls([allow(ResourceType.GROUP, "dave-", "User:dave", AclOperation.READ,
                                      pattern=ResourcePatternType.PREFIXED)]))
    values, error = consume(dave, "orders.eu", "dave-group", 2)
    assert error is None and values == [b"eu-1", b"eu-2"]

    # Deny beats allow: Read on every topic, denied on orders.secret.
    assert produce(admin_login, "orders.secret", [b"s-1"]) == [None]
    values, error = consume(dave, "orders.secret", "dave-secret-group", 1)
    assert error == KafkaError.TOPIC_AUTHORIZATION_FAILED and values == []

    # ListGroups shows dave only his groups; the super user sees every group.
    consume(admin_login, "orders.eu", "admin-group", 2)
    admin_groups = {group.group_id for group in admin.list_consumer_groups().result(timeout=30).valid}
    dave_admin = AdminClient(dave)
    listed = dave_admin.list_consumer_groups().result(timeout=30)
    assert not listed.errors, listed.errors
    dave_groups = {group.group_id for group in listed.valid}
    assert "dave-group" in dave_groups and "admin-group" not in dave_groups, (dave_groups, admin_groups)
    assert {"dave-group", "admin-group"} <= admin_groups

    # A super user passes everything without any ACL naming it.
    assert produce(admin_login, "payments", [b"p-3"]) == [None]
    values, error = consume(admin_login, "payments", f"any-{uuid.uuid4().hex[:6]}", 1)
    assert error is None and values == [b"p-3"]

    # Deleting alice's ACL takes her write away again.
    deleted = wait_all(admin.delete_acls([AclBindingFilter(
        ResourceType.TOPIC, None, ResourcePatternType.ANY, "User:alice", None, AclOperation.ANY,
        AclPermissionType.ANY)]))
    assert sum(len(bindings) for bindings in deleted.values()) == 1
    assert produce(alice, "orders.eu", [b"eu-3"]) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]

    # Non-super users may not manage ACLs or credentials.
    alice_admin = AdminClient(alice)
    with pytest.raises(Exception, match="(?i)authoriz"):
        wait_all(alice_admin.create_acls([allow(ResourceType.TOPIC, "*", "User:alice",
                                                AclOperation.ALL)]))


def test_acls_survive_a_restart(acl_broker):
    admin_login = login(acl_broker, "admin", "admin-secret")
    admin = AdminClient(admin_login)
    wait_all(admin.create_topics([NewTopic("kept", 1, 1)]))
    wait_all(admin.create_acls([allow(ResourceType.TOPIC, "kept", "User:bob", AclOperation.WRITE)]))
    acl_broker.stop()
    acl_broker.start()
    bob = login(acl_broker, "bob", "bob-secret")
    assert produce(bob, "kept", [b"after restart"]) == [None]
    assert produce(bob, "other", [b"nope"]) == [KafkaError.TOPIC_AUTHORIZATION_FAILED]


def test_acl_requests_without_an_authorizer_are_refused(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    with pytest.raises(Exception, match="SECURITY_DISABLED"):
        wait_all(admin.create_acls([allow(ResourceType.TOPIC, "t", "User:a", AclOperation.READ)]))
