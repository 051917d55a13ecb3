//! What CreateAcls, DescribeAcls and DeleteAcls share: the wire codes of an ACL and of a
//! filter, turned into the authorizer's types, and the cluster permission each needs.

use super::RequestContext;
use crate::security::acl::{
    AclBinding, AclFilter, Operation, PatternFilter, PatternType, Permission, ResourceType,
};
use kafka_protocol::ResponseError;

/// Kafka's "ANY" code for resource types, operations and permissions (and pattern types).
const ANY: i8 = 1;
/// Kafka's "MATCH" pattern type (filters only).
const MATCH: i8 = 2;

/// Why an ACL request cannot be served at all: (error code, message).
pub type Refusal = (i16, String);

/// ACL requests need an authorizer, and Alter (create, delete) or Describe on the
/// cluster.
pub fn check(ctx: &RequestContext<'_>, operation: Operation) -> Result<(), Refusal> {
    if !ctx.broker.authorizer_enabled() {
        return Err((
            ResponseError::SecurityDisabled.code(),
            "No Authorizer is configured (authorizer.class.name)".into(),
        ));
    }
    if !ctx.allowed_on_cluster(operation) {
        return Err((
            ResponseError::ClusterAuthorizationFailed.code(),
            "not authorized on the cluster".into(),
        ));
    }
    Ok(())
}

fn bad(what: &str, code: i8) -> Refusal {
    (
        ResponseError::InvalidRequest.code(),
        format!("invalid {what} {code}"),
    )
}

/// The ACL a CreateAcls creation describes.
#[allow(clippy::too_many_arguments)]
pub fn binding(
    resource_type: i8,
    resource_name: &str,
    pattern_type: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Result<AclBinding, Refusal> {
    let acl = AclBinding {
        resource_type: ResourceType::from_code(resource_type)
            .ok_or_else(|| bad("resource type", resource_type))?,
        resource_name: resource_name.to_string(),
        pattern_type: PatternType::from_code(pattern_type)
            .ok_or_else(|| bad("pattern type", pattern_type))?,
        principal: principal.to_string(),
        host: host.to_string(),
        operation: Operation::from_code(operation).ok_or_else(|| bad("operation", operation))?,
        permission: Permission::from_code(permission).ok_or_else(|| bad("permission type", permission))?,
    };
    crate::security::acl::validate(&acl)
        .map_err(|message| (ResponseError::InvalidRequest.code(), message))?;
    Ok(acl)
}

/// The filter of a DescribeAcls request or a DeleteAcls filter.
#[allow(clippy::too_many_arguments)]
pub fn filter(
    resource_type: i8,
    resource_name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, Refusal> {
    Ok(AclFilter {
        resource_type: match resource_type {
            ANY => None,
            code => Some(ResourceType::from_code(code).ok_or_else(|| bad("resource type", code))?),
        },
        resource_name: resource_name.map(str::to_string),
        pattern: match pattern_type {
            ANY => PatternFilter::Any,
            MATCH => PatternFilter::Match,
            code => {
                PatternFilter::Exactly(PatternType::from_code(code).ok_or_else(|| bad("pattern type", code))?)
            }
        },
        principal: principal.map(str::to_string),
        host: host.map(str::to_string),
        operation: match operation {
            ANY => None,
            code => Some(Operation::from_code(code).ok_or_else(|| bad("operation", code))?),
        },
        permission: match permission {
            ANY => None,
            code => Some(Permission::from_code(code).ok_or_else(|| bad("permission type", code))?),
        },
    })
}
