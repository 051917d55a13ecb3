//! DeleteAcls (API 31): removes the ACLs matching each filter, reporting what each
//! filter removed.

use super::RequestContext;
use crate::controller::rpc::ControllerRequest;
use crate::security::acl::Operation;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::delete_acls_response::{DeleteAclsFilterResult, DeleteAclsMatchingAcl};
use kafka_protocol::messages::{DeleteAclsRequest, DeleteAclsResponse};
use kafka_protocol::protocol::StrBytes;

fn failure(code: i16, message: String) -> DeleteAclsFilterResult {
    DeleteAclsFilterResult::default()
        .with_error_code(code)
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub async fn handle(ctx: &RequestContext<'_>, request: DeleteAclsRequest) -> DeleteAclsResponse {
    if let Err((code, message)) = super::acls::check(ctx, Operation::Alter) {
        let results = request
            .filters
            .iter()
            .map(|_| failure(code, message.clone()))
            .collect();
        return DeleteAclsResponse::default().with_filter_results(results);
    }
    let image = ctx.broker.image();
    let matched: Vec<_> = request
        .filters
        .iter()
        .map(|wanted| {
            super::acls::filter(
                wanted.resource_type_filter,
                wanted.resource_name_filter.as_deref(),
                wanted.pattern_type_filter,
                wanted.principal_filter.as_deref(),
                wanted.host_filter.as_deref(),
                wanted.operation,
                wanted.permission_type,
            )
            .map(|filter| {
                image
                    .acls
                    .iter()
                    .filter(|(_, acl)| filter.matches(acl))
                    .map(|(id, acl)| (*id, acl.clone()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut ids: Vec<uuid::Uuid> = matched
        .iter()
        .filter_map(|outcome| outcome.as_ref().ok())
        .flatten()
        .map(|(id, _)| *id)
        .collect();
    ids.sort();
    ids.dedup();
    let commit_failure = if ids.is_empty() {
        None
    } else {
        super::commit_metadata(ctx.broker, ControllerRequest::DeleteAcls { ids })
            .await
            .err()
            .map(|error| error.to_string())
    };
    let results = matched
        .into_iter()
        .map(|outcome| match (outcome, &commit_failure) {
            (Err((code, message)), _) => failure(code, message),
            (Ok(_), Some(message)) => failure(ResponseError::RequestTimedOut.code(), message.clone()),
            (Ok(acls), None) => DeleteAclsFilterResult::default().with_matching_acls(
                acls.into_iter()
                    .map(|(_, acl)| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(acl.resource_type.code())
                            .with_resource_name(StrBytes::from_string(acl.resource_name))
                            .with_pattern_type(acl.pattern_type.code())
                            .with_principal(StrBytes::from_string(acl.principal))
                            .with_host(StrBytes::from_string(acl.host))
                            .with_operation(acl.operation.code())
                            .with_permission_type(acl.permission.code())
                    })
                    .collect(),
            ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
