//! A client that goes away takes its pending work with it. In its own test binary:
//! it counts this process's open descriptors, which other tests would disturb.

mod common;

use common::{Client, TestBroker, create_topic, fetch_request};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |entries| entries.count())
}

/// Found by the long fuzz run: a fetch asking to wait for hours held its connection
/// (and file descriptor) open after the client had gone, until descriptors ran out.
/// A client's close now drops the request it was waiting on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_ends_when_its_client_goes() {
    let broker = TestBroker::start(&[]).await;
    let mut client = broker.client().await;
    create_topic(&mut client, "quiet", 1, &[]).await;
    let before = open_fds();
    for _ in 0..50 {
        let mut waiting = Client::connect(broker.address).await;
        let mut request = fetch_request("quiet", 0, 0);
        request.max_wait_ms = 3_600_000;
        request.min_bytes = 1;
        let frame = waiting.encode_request(&request, 11);
        waiting.stream.write_all(&frame).await.expect("send");
        tokio::time::sleep(Duration::from_millis(5)).await;
        drop(waiting);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds() > before + 5 {
        assert!(
            Instant::now() < deadline,
            "{} descriptors still open for gone clients",
            open_fds() - before
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    common::assert_answers(&mut client).await;
}
