// kafkajs 2.x against a real broker process: a group consumer reads a whole topic,
// commits, and a second consumer of the same group resumes after the commits.
const { test } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const net = require('node:net');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Kafka, logLevel } = require('kafkajs');

const BINARY = process.env.FERROLOG_BIN || path.join(__dirname, '..', '..', 'target', 'release', 'ferrolog');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

async function startBroker() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrolog-node-'));
  const port = await freePort();
  const child = spawn(BINARY, [
    '--set', `log.dirs=${dir}`,
    '--set', `listeners=PLAINTEXT://127.0.0.1:${port}`,
    '--set', 'metrics.listener=127.0.0.1:0',
    '--set', 'group.initial.rebalance.delay.ms=200',
    '--set', 'offsets.topic.num.partitions=5',
  ], { stdio: 'ignore' });
  for (let i = 0; i < 100; i++) {
    const up = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => { socket.end(); resolve(true); });
      socket.on('error', () => resolve(false));
    });
    if (up) return { child, dir, bootstrap: `127.0.0.1:${port}` };
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error('broker did not start');
}

async function consumeAll(kafka, groupId, topic, expected) {
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const values = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${values.length} of ${expected}`)), 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        values.push(message.value.toString());
        if (values.length === expected) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect(); // commits what was consumed and leaves the group
  return values;
}

test('kafkajs group consumer reads a topic completely and resumes from commits', async () => {
  const broker = await startBroker();
  try {
    const kafka = new Kafka({ clientId: 'compat', brokers: [broker.bootstrap], logLevel: logLevel.NOTHING });
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'js', numPartitions: 3 }] });
    await admin.disconnect();
    const producer = kafka.producer();
    await producer.connect();
    const messages = Array.from({ length: 3000 }, (_, i) => ({ value: `m${i}` }));
    await producer.send({ topic: 'js', acks: -1, messages });

    const first = await consumeAll(kafka, 'jsg', 'js', 3000);
    assert.strictEqual(new Set(first).size, 3000);

    await producer.send({ topic: 'js', messages: [{ value: 'late-1' }, { value: 'late-2' }] });
    await producer.disconnect();
    const second = await consumeAll(kafka, 'jsg', 'js', 2);
    assert.deepStrictEqual(second.sort(), ['late-1', 'late-2']);
  } finally {
    broker.child.kill('SIGKILL');
    fs.rmSync(broker.dir, { recursive: true, force: true });
  }
});
