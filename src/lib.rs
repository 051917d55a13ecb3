//! ferrolog: a Kafka-wire-compatible partitioned log broker.
//!
//! See ARCHITECTURE.md for the map of modules and their invariants.

pub mod alloc;
pub mod api;
pub mod broker;
pub mod client;
pub mod cluster;
pub mod common;
pub mod config;
pub mod controller;
pub mod group;
pub mod log;
pub mod metrics;
pub mod replication;
pub mod security;
pub mod server;
pub mod txn;
