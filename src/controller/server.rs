//! The CONTROLLER listener: Raft RPCs from other voters and requests from brokers.
//!
//! One task per connection, one request at a time on it. A frame that is too large or
//! does not parse closes that connection only.

use super::Controller;
use super::rpc::{RpcRequest, RpcResponse, read_frame, write_frame};
use std::sync::{Arc, Weak};
use tokio::net::{TcpListener, TcpStream};

/// Serves until the controller is dropped.
pub async fn run(listener: TcpListener, controller: Weak<Controller>) {
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
        tokio::spawn(async move {
            if let Err(error) = serve_connection(socket, controller).await {
                tracing::debug!(%peer, %error, "CONTROLLER connection closed");
            }
        });
    }
}

async fn serve_connection(mut socket: TcpStream, controller: Weak<Controller>) -> std::io::Result<()> {
    while let Some(request) = read_frame::<RpcRequest>(&mut socket).await? {
        let Some(controller) = controller.upgrade() else {
            return Ok(());
        };
        let response = handle(&controller, request).await;
        drop(controller);
        write_frame(&mut socket, &response).await?;
    }
    Ok(())
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
