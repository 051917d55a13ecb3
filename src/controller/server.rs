//! The CONTROLLER listener: Raft RPCs from other voters and requests from brokers.
//!
//! One task per connection, one request at a time on it. A frame that is too large or
//! does not parse closes that connection only. On an SSL listener the TLS handshake
//! comes first (10 s at most), and with an authorizer the connection's principal (its
//! certificate subject, or `User:ANONYMOUS`) must be allowed ClusterAction on the
//! cluster, as Kafka asks of controller and broker principals: super users are.
//! Anyone else is logged with their address and disconnected before any request.

use super::Controller;
use super::rpc::{RpcRequest, RpcResponse, Stream, read_frame, write_frame};
use crate::config::AuthorizerSettings;
use crate::security::acl::{self, AuthorizerRules, Operation, ResourceType};
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};

/// How long a peer may take over its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Who may connect: the listener's TLS and the authorizer settings.
#[derive(Clone)]
pub struct Admission {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub authorizer: AuthorizerSettings,
}

/// Serves until the controller is dropped.
pub async fn run(listener: TcpListener, controller: Weak<Controller>, admission: Admission) {
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "CONTROLLER accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(alive) = controller.upgrade() else { break };
        drop(alive);
        let _ = socket.set_nodelay(true);
        let controller = controller.clone();
        let admission = admission.clone();
        tokio::spawn(async move {
            let Some(stream) = admit(socket, peer, &controller, &admission).await else {
                return;
            };
            let mut peer_node = None;
            if let Err(error) = serve_connection(stream, controller.clone(), &mut peer_node).await {
                tracing::debug!(%peer, %error, "CONTROLLER connection closed");
            }
            // A connection of a known node ended: evidence that its process may be gone.
            if let (Some(node), Some(controller)) = (peer_node, controller.upgrade()) {
                controller.connection_ended(node);
            }
        });
    }
}

/// The connection once its TLS handshake (if any) is done and its principal may
/// reach the controller; None when it may not.
async fn admit(
    socket: TcpStream,
    peer: SocketAddr,
    controller: &Weak<Controller>,
    admission: &Admission,
) -> Option<Box<dyn Stream>> {
    let (stream, principal): (Box<dyn Stream>, String) = match &admission.tls {
        None => (Box::new(socket), crate::security::ANONYMOUS.to_string()),
        Some(tls) => {
            let accepted = tokio::time::timeout(
                TLS_HANDSHAKE_TIMEOUT,
                tokio_rustls::TlsAcceptor::from(tls.clone()).accept(socket),
            )
            .await;
            let stream = match accepted {
                Ok(Ok(stream)) => stream,
                Ok(Err(error)) => {
                    tracing::info!(%peer, %error, "CONTROLLER TLS handshake failed");
                    return None;
                }
                Err(_) => {
                    tracing::info!(%peer, "CONTROLLER TLS handshake timed out");
                    return None;
                }
            };
            let principal = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|chain| chain.first())
                .and_then(|certificate| crate::security::tls::certificate_principal(certificate))
                .unwrap_or_else(|| crate::security::ANONYMOUS.to_string());
            (Box::new(stream), principal)
        }
    };
    let settings = &admission.authorizer;
    if settings.enabled {
        let controller = controller.upgrade()?;
        let image = controller.image().borrow().clone();
        let rules = AuthorizerRules::from(settings);
        let allowed = acl::authorize(
            image.acls.values(),
            &rules,
            &principal,
            &peer.ip().to_string(),
            Operation::ClusterAction,
            ResourceType::Cluster,
            acl::CLUSTER,
        );
        if !allowed {
            tracing::warn!(%peer, %principal, "CONTROLLER connection refused: no ClusterAction on the cluster");
            return None;
        }
    }
    Some(stream)
}

/// Serves requests until the peer closes; `peer_node` learns which node the peer is
/// (the sender of a Raft message, or the broker of a heartbeat or registration).
async fn serve_connection(
    mut socket: Box<dyn Stream>,
    controller: Weak<Controller>,
    peer_node: &mut Option<i32>,
) -> std::io::Result<()> {
    while let Some(request) = read_frame::<_, RpcRequest>(&mut socket).await? {
        let Some(controller) = controller.upgrade() else {
            return Ok(());
        };
        if let Some(node) = sender(&request) {
            *peer_node = Some(node);
            controller.heard_from(node);
        }
        let response = handle(&controller, request).await;
        drop(controller);
        write_frame(&mut socket, &response).await?;
    }
    Ok(())
}

/// The node that sent `request`, when the request names it.
fn sender(request: &RpcRequest) -> Option<i32> {
    use super::rpc::ControllerRequest;
    let node = match request {
        RpcRequest::AppendEntries(request) => request.vote.leader_id().voted_for()?,
        RpcRequest::Vote(request) => request.vote.leader_id().voted_for()?,
        RpcRequest::InstallSnapshot(request) => request.vote.leader_id().voted_for()?,
        RpcRequest::Controller(
            ControllerRequest::BrokerHeartbeat { broker_id, .. }
            | ControllerRequest::RegisterBroker { broker_id, .. },
        ) => return Some(*broker_id),
        RpcRequest::Controller(_) => return None,
    };
    i32::try_from(node).ok()
}

async fn handle(controller: &Arc<Controller>, request: RpcRequest) -> RpcResponse {
    let raft = controller.raft();
    match request {
        RpcRequest::AppendEntries(request) => RpcResponse::AppendEntries(raft.append_entries(request).await),
        RpcRequest::Vote(request) => RpcResponse::Vote(raft.vote(request).await),
        RpcRequest::InstallSnapshot(request) => {
            RpcResponse::InstallSnapshot(raft.install_snapshot(request).await)
        }
        RpcRequest::Controller(request) => RpcResponse::Controller(controller.handle(request).await),
    }
}
