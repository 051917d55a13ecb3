"""aiokafka (asyncio) against the broker: an idempotent producer, a consumer group, and
a transaction whose records a read_committed consumer sees only once committed."""

import asyncio
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic


async def _create(bootstrap, name, partitions):
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def _consume(consumer, n, timeout=30):
    values = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(values) < n and loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=500)
        for records in batches.values():
            values.extend(record.value for record in records)
    return values


def test_idempotent_producer_and_group(broker):
    async def run():
        topic = "aio-" + uuid.uuid4().hex[:6]
        await _create(broker.bootstrap, topic, 3)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all")
        await producer.start()
        try:
            for i in range(300):
                await producer.send(topic, f"v{i}".encode(), partition=i % 3)
            await producer.flush()
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id="aio-group",
                                    auto_offset_reset="earliest", enable_auto_commit=False)
        await consumer.start()
        try:
            values = await _consume(consumer, 300)
            await consumer.commit()
            committed = {p: await consumer.committed(TopicPartition(topic, p)) for p in range(3)}
        finally:
            await consumer.stop()
        assert sorted(values) == sorted(f"v{i}".encode() for i in range(300))
        assert committed == {0: 100, 1: 100, 2: 100}
    asyncio.run(run())


def test_transaction_commit_and_abort(broker):
    async def run():
        topic = "aio-txn-" + uuid.uuid4().hex[:6]
        await _create(broker.bootstrap, topic, 1)
        producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, transactional_id="aio-txn")
        await producer.start()
        try:
            async with producer.transaction():
                for i in range(10):
                    await producer.send(topic, f"committed-{i}".encode())
            await producer.begin_transaction()
            await producer.send(topic, b"aborted")
            await producer.abort_transaction()
            async with producer.transaction():
                await producer.send(topic, b"last")
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(bootstrap_servers=broker.bootstrap, isolation_level="read_committed",
                                    auto_offset_reset="earliest")
        await consumer.start()
        try:
            consumer.assign([TopicPartition(topic, 0)])
            values = await _consume(consumer, 11)
        finally:
            await consumer.stop()
        assert values == [f"committed-{i}".encode() for i in range(10)] + [b"last"]
    asyncio.run(run())
