//! Cluster metadata: which topics exist, with their ids, partitions and configs.

pub mod metadata;
