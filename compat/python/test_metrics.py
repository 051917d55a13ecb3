"""The /metrics endpoint after a known workload, parsed by prometheus_client's
OpenMetrics parser: produced records and bytes match the log, fetched bytes match what
the consumer read, group lag is what is left to consume, request histograms count the
requests, and the process and connection gauges are there."""

import json
import re
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from conftest import REPO
from prometheus_client.openmetrics.parser import text_string_to_metric_families

N = 2000
VALUE = b"m" * 300


def scrape(broker):
    url = f"http://127.0.0.1:{broker.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("application/openmetrics-text")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted((k, str(v)) for k, v in labels.items()))))


def total(samples, name, **labels):
    wanted = {(k, str(v)) for k, v in labels.items()}
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= set(ls))


def test_metrics_after_a_known_workload(broker):
    admin = AdminClient({"bootstrap.servers": broker.bootstrap})
    for future in admin.create_topics([NewTopic("metered", 1, 1)]).values():
        future.result(timeout=30)
    producer = Producer({"bootstrap.servers": broker.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(N):
        producer.produce("metered", key=str(i).encode(), value=VALUE)
    assert producer.flush(30) == 0

    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "reader",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.assign([TopicPartition("metered", 0, 0)])
    read = 0
    while read < N:
        message = consumer.poll(10)
        assert message is not None, f"only {read} of {N} read"
        assert message.error() is None, message.error()
        read += 1
    consumer.commit(offsets=[TopicPartition("metered", 0, N)], asynchronous=False)
    # Two refusals with known codes: the topic exists; an offset past the end.
    for future in admin.create_topics([NewTopic("metered", 1, 1)]).values():
        with pytest.raises(KafkaException):
            future.result(timeout=30)
    beyond = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "beyond",
                       "auto.offset.reset": "error"})
    beyond.assign([TopicPartition("metered", 0, N + 100)])
    message = beyond.poll(10)
    assert message is not None and message.error() is not None
    beyond.close()
    # A second group that stopped halfway.
    halfway = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": "halfway"})
    halfway.commit(offsets=[TopicPartition("metered", 0, N // 2)], asynchronous=False)

    samples = scrape(broker)
    labels = {"topic": "metered", "partition": 0}
    size = value(samples, "ferrolog_partition_log_size_bytes", **labels)
    assert value(samples, "ferrolog_partition_high_watermark", **labels) == N
    assert value(samples, "ferrolog_partition_log_end_offset", **labels) == N
    assert value(samples, "ferrolog_partition_log_start_offset", **labels) == 0
    assert value(samples, "ferrolog_partition_log_segments", **labels) == 1
    assert value(samples, "ferrolog_partition_leader", **labels) == 1
    # What producers appended is exactly what the log holds.
    assert value(samples, "ferrolog_topic_records_in_total", topic="metered") == N
    assert value(samples, "ferrolog_topic_bytes_in_total", topic="metered") == size
    assert size > N * len(VALUE)
    # The consumer read the log once, from the start.
    assert value(samples, "ferrolog_topic_bytes_out_total", topic="metered") == size
    assert value(samples, "ferrolog_topic_records_out_total", topic="metered") == N
    # Errors by API and code: exactly the one refused creation; the fetch past the end.
    assert value(samples, "ferrolog_request_errors_total", api="CreateTopics", code=36,
                 error="TOPIC_ALREADY_EXISTS") == 1
    assert value(samples, "ferrolog_request_errors_total", api="Fetch", code=1,
                 error="OFFSET_OUT_OF_RANGE") >= 1
    assert total(samples, "ferrolog_request_errors_total", api="Produce") == 0
    # librdkafka fetches without sessions.
    assert value(samples, "ferrolog_fetch_sessions") == 0
    # Lag: what each group has left to read.
    assert value(samples, "ferrolog_consumer_group_lag", group="reader", **labels) == 0
    assert value(samples, "ferrolog_consumer_group_lag", group="halfway", **labels) == N - N // 2
    # Requests: counted per version, timed per API.
    produces = total(samples, "ferrolog_requests_total", api="Produce")
    assert produces >= 1
    assert value(samples, "ferrolog_request_duration_seconds_count", api="Produce") == produces
    fetches = total(samples, "ferrolog_requests_total", api="Fetch")
    assert fetches >= 1
    assert value(samples, "ferrolog_request_duration_seconds_count", api="Fetch") == fetches
    assert value(samples, "ferrolog_request_duration_seconds_bucket", api="Fetch", le="+Inf") == fetches
    # Connections: the consumers are still open.
    assert value(samples, "ferrolog_connections") >= 2
    assert value(samples, "ferrolog_connections_accepted_total") >= value(samples, "ferrolog_connections")
    # The consumers' long polls wait in the fetch purgatory; nothing waits to replicate.
    assert value(samples, "ferrolog_waiting_requests", kind="Fetch") >= 0
    assert value(samples, "ferrolog_waiting_requests", kind="Produce") == 0
    assert value(samples, "ferrolog_isr_shrinks_total") == 0
    assert value(samples, "ferrolog_under_replicated_partitions") == 0
    assert value(samples, "ferrolog_offline_partitions") == 0
    assert value(samples, "ferrolog_active_controller") == 1
    assert value(samples, "ferrolog_process_cpu_seconds_total") > 0
    assert value(samples, "ferrolog_process_resident_memory_bytes") > 1 << 20
    assert value(samples, "ferrolog_process_open_fds") > 0
    # Every metric the shipped Grafana dashboard queries is served.
    dashboard = json.loads((REPO / "config" / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"ferrolog_\w+", target["expr"])}
    served = {name for name, _ in samples}
    assert len(queried) >= 15 and queried <= served, sorted(queried - served)
    consumer.close()
    halfway.close()


def test_other_paths_and_methods_are_refused(broker):
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(f"http://127.0.0.1:{broker.metrics_port}/nothing", timeout=10)
    assert missing.value.code == 404
    request = urllib.request.Request(f"http://127.0.0.1:{broker.metrics_port}/metrics", data=b"x",
                                     method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405
