//! DescribeLogDirs (API 35): each of this broker's `log.dirs`, with the size of every
//! local partition in it, its offset lag (high watermark minus log end offset, never
//! below 0, as Kafka reports it) and, from v4, the file system's total and usable bytes.
//! A null topic list asks for every partition. Needs Describe on the cluster: without
//! it the answer is CLUSTER_AUTHORIZATION_FAILED (v3+) or empty.

use super::RequestContext;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// (total, usable) bytes of the file system holding `dir`; -1 each when unknown.
fn space(dir: &Path) -> (i64, i64) {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return (-1, -1);
    };
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `stat` a buffer of the struct's size.
    if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return (-1, -1);
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let stat = unsafe { stat.assume_init() };
    let block = stat.f_frsize as i64;
    (stat.f_blocks as i64 * block, stat.f_bavail as i64 * block)
}

pub fn handle(ctx: &RequestContext<'_>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    if !ctx.allowed_on_cluster(Operation::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let wanted: Option<BTreeSet<(String, i32)>> = request.topics.map(|topics| {
        topics
            .iter()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(move |partition| (topic.topic.to_string(), *partition))
            })
            .collect()
    });
    let is_wanted = |tp: &crate::log::TopicPartition| {
        wanted
            .as_ref()
            .is_none_or(|wanted| wanted.contains(&(tp.topic.clone(), tp.partition)))
    };
    // log dir -> topic -> partitions
    let mut by_dir: BTreeMap<std::path::PathBuf, BTreeMap<String, Vec<DescribeLogDirsPartition>>> = ctx
        .broker
        .config
        .log_dirs
        .iter()
        .map(|dir| (dir.clone(), BTreeMap::new()))
        .collect();
    for partition in ctx.broker.replicas.all_partitions() {
        let tp = &partition.topic_partition;
        if !is_wanted(tp) {
            continue;
        }
        let (dir, size, lag) = partition.with_log(|log| {
            (
                log.dir().parent().map(Path::to_path_buf),
                log.size_bytes() as i64,
                (log.high_watermark() - log.log_end_offset()).max(0),
            )
        });
        let Some(entry) = dir.and_then(|dir| by_dir.get_mut(&dir)) else {
            continue;
        };
        entry.entry(tp.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(tp.partition)
                .with_partition_size(size)
                .with_offset_lag(lag)
                .with_is_future_key(false),
        );
    }
    // Replicas whose logs could not be opened are listed where their files are, with
    // the bytes they hold there (the broker logged why at start).
    for failed in ctx.broker.replicas.offline_logs() {
        let tp = &failed.topic_partition;
        if !is_wanted(tp) {
            continue;
        }
        let Some(entry) = failed.path.parent().and_then(|dir| by_dir.get_mut(dir)) else {
            continue;
        };
        let size = std::fs::read_dir(&failed.path).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.metadata().ok())
                .filter(std::fs::Metadata::is_file)
                .map(|meta| meta.len() as i64)
                .sum()
        });
        entry.entry(tp.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(tp.partition)
                .with_partition_size(size)
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let results = by_dir
        .into_iter()
        .map(|(dir, topics)| {
            let (total, usable) = space(&dir);
            DescribeLogDirsResult::default()
                .with_log_dir(StrBytes::from_string(dir.display().to_string()))
                .with_topics(
                    topics
                        .into_iter()
                        .map(|(name, mut partitions)| {
                            partitions.sort_by_key(|partition| partition.partition_index);
                            DescribeLogDirsTopic::default()
                                .with_name(TopicName(StrBytes::from_string(name)))
                                .with_partitions(partitions)
                        })
                        .collect(),
                )
                .with_total_bytes(total)
                .with_usable_bytes(usable)
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}
