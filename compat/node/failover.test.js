// kafkajs 2.x against a three-node cluster started by scripts/cluster: a producer with
// acks=-1 and idempotence, and a consumer, ride through the SIGKILL of a partition's
// leader; every acknowledged message is read back.
const { test } = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Kafka, logLevel } = require('kafkajs');

const SCRIPT = path.join(__dirname, '..', '..', 'scripts', 'cluster');

function cluster(dir, ...args) {
  return execFileSync(SCRIPT, args, {
    env: {
      ...process.env,
      FERROLOG_CLUSTER_DIR: dir,
      FERROLOG_CLUSTER_PORTS: 'ephemeral',
      FERROLOG_CLUSTER_SETTINGS: 'broker.session.timeout.ms=3000 broker.heartbeat.interval.ms=500 replica.lag.time.max.ms=3000',
    },
    encoding: 'utf8',
    timeout: 180000,
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

test('kafkajs producer and consumer ride through a leader failover', { timeout: 240000 }, async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrolog-node-cluster-'));
  cluster(dir, 'up', '3');
  const nodes = fs.readFileSync(path.join(dir, 'nodes'), 'utf8').trim().split('\n').map((line) => line.split(' '));
  const brokers = nodes.map(([, port]) => `127.0.0.1:${port}`);
  const kafka = new Kafka({ clientId: 'failover', brokers, logLevel: logLevel.NOTHING,
    retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 2000 } });
  const admin = kafka.admin();
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  const consumer = kafka.consumer({ groupId: 'failover-readers' });
  try {
    await admin.connect();
    await admin.createTopics({
      topics: [{ topic: 'failover', numPartitions: 1, replicationFactor: 3,
        configEntries: [{ name: 'min.insync.replicas', value: '2' }] }],
    });
    await producer.connect();
    const acked = [];
    let killed = null;
    for (let i = 0; i < 200; i++) {
      if (i === 100) {
        const metadata = await admin.fetchTopicMetadata({ topics: ['failover'] });
        killed = metadata.topics[0].partitions[0].leader;
        cluster(dir, 'kill', String(killed));
      }
      const [result] = await producer.send({ topic: 'failover', acks: -1, messages: [{ value: `m${i}` }] });
      acked.push([Number(result.baseOffset), `m${i}`]);
    }
    // The group's offsets topic needs all three replicas: bring the node back.
    cluster(dir, 'start', String(killed));
    const seen = new Map();
    await consumer.connect();
    await consumer.subscribe({ topic: 'failover', fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => { seen.set(Number(message.offset), message.value.toString()); } });
    for (let i = 0; i < 150 && seen.size < acked.length; i++) await sleep(200);
    for (const [offset, value] of acked) {
      assert.strictEqual(seen.get(offset), value, `acknowledged ${value} at offset ${offset}`);
    }
    assert.strictEqual(seen.size, acked.length, 'nothing written twice');
  } finally {
    await consumer.disconnect().catch(() => {});
    await producer.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
    try { cluster(dir, 'down'); } catch (error) { /* stopped by PID below if need be */ }
    for (const file of fs.readdirSync(dir).filter((name) => name.endsWith('.pid'))) {
      try { process.kill(Number(fs.readFileSync(path.join(dir, file), 'utf8')), 'SIGKILL'); } catch (error) { /* gone */ }
    }
  }
});
