//! CreateAcls (API 30): adds ACLs to the cluster metadata through the controller. Each
//! creation is checked on its own; the valid ones commit together.

use super::RequestContext;
use crate::controller::rpc::ControllerRequest;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::{CreateAclsRequest, CreateAclsResponse};
use kafka_protocol::protocol::StrBytes;

fn failure(code: i16, message: String) -> AclCreationResult {
    AclCreationResult::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub async fn handle(ctx: &RequestContext<'_>, request: CreateAclsRequest) -> CreateAclsResponse {
    if let Err((code, message)) = super::acls::check(ctx, Operation::Alter) {
        let results = request
            .creations
            .iter()
            .map(|_| failure(code, message.clone()))
            .collect();
        return CreateAclsResponse::default().with_results(results);
    }
    let checked: Vec<_> = request
        .creations
        .iter()
        .map(|creation| {
            super::acls::binding(
                creation.resource_type,
                &creation.resource_name,
                creation.resource_pattern_type,
                &creation.principal,
                &creation.host,
                creation.operation,
                creation.permission_type,
            )
        })
        .collect();
    let valid: Vec<_> = checked
        .iter()
        .filter_map(|acl| acl.as_ref().ok())
        .cloned()
        .collect();
    let commit_failure = if valid.is_empty() {
        None
    } else {
        super::commit_metadata(ctx.broker, ControllerRequest::CreateAcls { acls: valid })
            .await
            .err()
            .map(|error| error.to_string())
    };
    let results = checked
        .into_iter()
        .map(|outcome| match (outcome, &commit_failure) {
            (Err((code, message)), _) => failure(code, message),
            (Ok(_), Some(message)) => failure(ResponseError::RequestTimedOut.code(), message.clone()),
            (Ok(_), None) => AclCreationResult::default(),
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
