//! openraft's network: Raft RPCs to other voters over their CONTROLLER listeners.

use super::rpc::{Dialer, RpcError, RpcPool, RpcRequest, RpcResponse};
use super::types::{Node, NodeId, TypeConfig};
use openraft::error::{InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

/// Hands out one peer per target; peers for the same address share a connection pool.
#[derive(Clone)]
pub struct Network {
    dialer: Dialer,
    pools: Arc<Mutex<HashMap<String, Arc<RpcPool>>>>,
    reachability: Reachability,
}

/// Whether each voter answered its last RPC, so that a voter going away or coming back
/// is logged once, not on every heartbeat. A voter never reached yet (nodes of a new
/// cluster start one by one) is reported only once it stays unreachable for
/// [`UNREACHABLE_GRACE`].
#[derive(Clone, Default)]
struct Reachability(Arc<Mutex<HashMap<NodeId, VoterState>>>);

#[derive(Clone, Copy)]
enum VoterState {
    NeverReached { since: std::time::Instant },
    Reachable,
    Unreachable,
}

const UNREACHABLE_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

impl Reachability {
    fn record(&self, target: NodeId, address: &str, outcome: Result<(), &RpcError>) {
        let now = std::time::Instant::now();
        let mut voters = self.0.lock();
        let state = voters
            .entry(target)
            .or_insert(VoterState::NeverReached { since: now });
        match (outcome, *state) {
            (Ok(()), VoterState::Unreachable) => {
                tracing::info!(voter = target, %address, "controller quorum voter reachable again");
                *state = VoterState::Reachable;
            }
            (Ok(()), _) => *state = VoterState::Reachable,
            (Err(error), VoterState::Reachable) => {
                tracing::warn!(voter = target, %address, %error, "controller quorum voter unreachable");
                *state = VoterState::Unreachable;
            }
            (Err(error), VoterState::NeverReached { since })
                if now.duration_since(since) >= UNREACHABLE_GRACE =>
            {
                tracing::warn!(voter = target, %address, %error, "controller quorum voter unreachable");
                *state = VoterState::Unreachable;
            }
            (Err(_), _) => {}
        }
    }
}

impl Network {
    pub fn new(dialer: Dialer) -> Self {
        Network {
            dialer,
            pools: Arc::default(),
            reachability: Reachability::default(),
        }
    }

    fn pool(&self, address: &str) -> Option<Arc<RpcPool>> {
        let mut pools = self.pools.lock();
        if let Some(pool) = pools.get(address) {
            return Some(pool.clone());
        }
        let resolved: SocketAddr = address.to_socket_addrs().ok()?.next()?;
        let host = address
            .rsplit_once(':')
            .map_or(address, |(host, _)| host)
            .trim_start_matches('[')
            .trim_end_matches(']');
        let pool = Arc::new(RpcPool::new(resolved, host, self.dialer.clone()));
        pools.insert(address.to_string(), pool.clone());
        Some(pool)
    }
}

pub struct Peer {
    target: NodeId,
    address: String,
    pool: Option<Arc<RpcPool>>,
    reachability: Reachability,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        Peer {
            target,
            address: node.addr.clone(),
            pool: self.pool(&node.addr),
            reachability: self.reachability.clone(),
        }
    }
}

type Failure<E> = RPCError<NodeId, Node, RaftError<NodeId, E>>;

impl Peer {
    async fn call<E: std::error::Error>(
        &self,
        request: RpcRequest,
        option: &RPCOption,
    ) -> Result<RpcResponse, Failure<E>> {
        let Some(pool) = &self.pool else {
            let error = std::io::Error::other(format!("cannot resolve `{}`", self.address));
            return Err(RPCError::Unreachable(Unreachable::new(&error)));
        };
        let result = pool.call(&request, option.hard_ttl()).await;
        self.reachability
            .record(self.target, &self.address, result.as_ref().map(|_| ()));
        result.map_err(|error| match error {
            RpcError::Connect { .. } => RPCError::Unreachable(Unreachable::new(&error)),
            _ => RPCError::Network(NetworkError::new(&error)),
        })
    }

    fn unexpected<E: std::error::Error>(&self) -> Failure<E> {
        let error = std::io::Error::other(format!("node {} answered a different RPC", self.target));
        RPCError::Network(NetworkError::new(&error))
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, Failure<openraft::error::Infallible>> {
        match self.call(RpcRequest::AppendEntries(rpc), &option).await? {
            RpcResponse::AppendEntries(result) => {
                result.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
            }
            _ => Err(self.unexpected()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, Failure<InstallSnapshotError>> {
        match self.call(RpcRequest::InstallSnapshot(rpc), &option).await? {
            RpcResponse::InstallSnapshot(result) => {
                result.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
            }
            _ => Err(self.unexpected()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, Failure<openraft::error::Infallible>> {
        match self.call(RpcRequest::Vote(rpc), &option).await? {
            RpcResponse::Vote(result) => {
                result.map_err(|error| RPCError::RemoteError(RemoteError::new(self.target, error)))
            }
            _ => Err(self.unexpected()),
        }
    }
}
