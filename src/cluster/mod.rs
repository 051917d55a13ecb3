//! Cluster metadata as pure logic: the image and its records, replica placement and
//! leader choice, broker lifecycle decisions, and the plans of metadata writes. The
//! controller (`crate::controller`) runs these under Raft; brokers follow the image.

pub mod capacity;
pub mod commands;
pub mod election;
pub mod fencing;
pub mod image;
pub mod lifecycle;
pub mod meta_properties;
pub mod partition_change;
pub mod placement;
pub mod quotas;
pub mod reassignment;
#[cfg(test)]
pub mod test_images;
