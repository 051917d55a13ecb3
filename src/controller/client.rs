//! How a broker reaches the active controller: in-process when this node is the active
//! controller, else over the CONTROLLER listener of the voter it believes leads,
//! following NotController hints and retrying until the caller's timeout.

use super::Controller;
use super::rpc::{
    ControllerError, ControllerRequest, ControllerResponse, Dialer, RpcPool, RpcRequest, RpcResponse,
};
use super::types::NodeId;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// The pause between attempts while no active controller answers.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

pub struct ControllerClient {
    /// This node's own controller, in combined mode.
    local: Option<Arc<Controller>>,
    /// Every voter's CONTROLLER address.
    voters: BTreeMap<i32, Arc<RpcPool>>,
    /// The voter last known (or guessed) to be active.
    leader_hint: Mutex<Option<i32>>,
}

impl ControllerClient {
    pub fn new(
        local: Option<Arc<Controller>>,
        voters: &BTreeMap<i32, String>,
        dialer: Dialer,
    ) -> anyhow::Result<Self> {
        let mut pools = BTreeMap::new();
        for (id, address) in voters {
            if local
                .as_ref()
                .is_some_and(|controller| controller.node_id() == *id)
            {
                continue;
            }
            let resolved: SocketAddr = address
                .to_socket_addrs()
                .ok()
                .and_then(|mut addresses| addresses.next())
                .ok_or_else(|| anyhow::anyhow!("cannot resolve controller {id} at `{address}`"))?;
            let host = address
                .rsplit_once(':')
                .map_or(address.as_str(), |(host, _)| host)
                .trim_start_matches('[')
                .trim_end_matches(']');
            pools.insert(*id, Arc::new(RpcPool::new(resolved, host, dialer.clone())));
        }
        Ok(ControllerClient {
            local,
            voters: pools,
            leader_hint: Mutex::new(None),
        })
    }

    /// Who to ask next: the leader as this node's Raft knows it, else the last hint,
    /// else the voters in turn.
    fn target(&self, attempt: usize) -> Option<i32> {
        if let Some(local) = &self.local
            && let Some(leader) = local.leader()
        {
            return Some(leader as i32);
        }
        if let Some(hint) = *self.leader_hint.lock() {
            return Some(hint);
        }
        let mut candidates: Vec<i32> = self.voters.keys().copied().collect();
        if let Some(local) = &self.local {
            candidates.push(local.node_id());
        }
        (!candidates.is_empty()).then(|| candidates[attempt % candidates.len()])
    }

    /// Sends `request` to the active controller, retrying for at most `timeout`.
    pub async fn request(&self, request: ControllerRequest, timeout: Duration) -> ControllerResponse {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut last_error = "no active controller is known".to_string();
        for attempt in 0.. {
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if remaining.is_zero() {
                break;
            }
            let answer = match self.target(attempt) {
                Some(target) if self.local.as_ref().is_some_and(|local| local.node_id() == target) => {
                    let local = self.local.as_ref().map(Arc::clone);
                    match local {
                        Some(local) => {
                            match tokio::time::timeout(remaining, local.handle(request.clone())).await {
                                Ok(response) => Some(response),
                                Err(_) => {
                                    last_error = "the local controller did not answer in time".to_string();
                                    None
                                }
                            }
                        }
                        None => None,
                    }
                }
                Some(target) => match self.voters.get(&target) {
                    Some(pool) => {
                        let message = RpcRequest::Controller(request.clone());
                        match pool.call(&message, remaining).await {
                            Ok(RpcResponse::Controller(response)) => Some(response),
                            Ok(_) => {
                                last_error = format!("controller {target} answered a different request");
                                None
                            }
                            Err(error) => {
                                last_error = error.to_string();
                                *self.leader_hint.lock() = None;
                                None
                            }
                        }
                    }
                    None => {
                        *self.leader_hint.lock() = None;
                        None
                    }
                },
                None => None,
            };
            match answer {
                Some(Err(ControllerError::NotController { leader })) => {
                    *self.leader_hint.lock() = leader.map(|leader: NodeId| leader as i32);
                    last_error = "the quorum has no leader".to_string();
                    if leader.is_some() {
                        // Follow the hint at once, but never spin on stale hints.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                }
                Some(response) => return response,
                None => {}
            }
            tokio::time::sleep(
                RETRY_BACKOFF.min(deadline.saturating_duration_since(tokio::time::Instant::now())),
            )
            .await;
        }
        Err(ControllerError::Unavailable(format!(
            "no active controller answered within {timeout:?} ({last_error})"
        )))
    }
}
