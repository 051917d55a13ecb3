//! DescribeAcls (API 29): the ACLs matching a filter, grouped by resource.

use super::RequestContext;
use crate::security::acl::Operation;
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{DescribeAclsRequest, DescribeAclsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

pub fn handle(ctx: &RequestContext<'_>, request: DescribeAclsRequest) -> DescribeAclsResponse {
    let refuse = |(code, message): super::acls::Refusal| {
        DescribeAclsResponse::default()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)))
    };
    if let Err(refusal) = super::acls::check(ctx, Operation::Describe) {
        return refuse(refusal);
    }
    let filter = match super::acls::filter(
        request.resource_type_filter,
        request.resource_name_filter.as_deref(),
        request.pattern_type_filter,
        request.principal_filter.as_deref(),
        request.host_filter.as_deref(),
        request.operation,
        request.permission_type,
    ) {
        Ok(filter) => filter,
        Err(refusal) => return refuse(refusal),
    };
    let image = ctx.broker.image();
    let mut resources: BTreeMap<_, Vec<AclDescription>> = BTreeMap::new();
    for acl in image.acls.values().filter(|acl| filter.matches(acl)) {
        resources
            .entry((acl.resource_type, acl.resource_name.clone(), acl.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(acl.principal.clone()))
                    .with_host(StrBytes::from_string(acl.host.clone()))
                    .with_operation(acl.operation.code())
                    .with_permission_type(acl.permission.code()),
            );
    }
    let resources = resources
        .into_iter()
        .map(|((kind, name, pattern), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(kind.code())
                .with_resource_name(StrBytes::from_string(name))
                .with_pattern_type(pattern.code())
                .with_acls(acls)
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}
