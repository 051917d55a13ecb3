//! Kafka's ACL model and the authorizer's decision, pure: principals `User:name`,
//! resources (topic, group, cluster, transactional id) named literally or by prefix,
//! operations, allow and deny, host filters.
//!
//! The decision follows Kafka's StandardAuthorizer: a super user may do anything; any
//! matching DENY refuses; else any matching ALLOW permits (an ALLOW of Read, Write,
//! Delete or Alter also permits Describe, and of AlterConfigs also DescribeConfigs);
//! else, if no ACL at all names the resource, `allow.everyone.if.no.acl.found` decides;
//! else the request is refused.

use serde::{Deserialize, Serialize};

/// Resource types, with Kafka's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

impl ResourceType {
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(ResourceType::Topic),
            3 => Some(ResourceType::Group),
            4 => Some(ResourceType::Cluster),
            5 => Some(ResourceType::TransactionalId),
            _ => None,
        }
    }
}

/// The one name of the cluster resource.
pub const CLUSTER: &str = "kafka-cluster";
/// A literal ACL on `*` applies to every resource of its type.
pub const WILDCARD: &str = "*";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PatternType {
    Literal,
    Prefixed,
}

impl PatternType {
    pub fn code(self) -> i8 {
        match self {
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        }
    }
}

/// Operations, with Kafka's codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Operation {
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
}

impl Operation {
    const CODES: [(Operation, i8); 11] = [
        (Operation::All, 2),
        (Operation::Read, 3),
        (Operation::Write, 4),
        (Operation::Create, 5),
        (Operation::Delete, 6),
        (Operation::Alter, 7),
        (Operation::Describe, 8),
        (Operation::ClusterAction, 9),
        (Operation::DescribeConfigs, 10),
        (Operation::AlterConfigs, 11),
        (Operation::IdempotentWrite, 12),
    ];

    pub fn code(self) -> i8 {
        Self::CODES
            .iter()
            .find(|(operation, _)| *operation == self)
            .map_or(0, |(_, code)| *code)
    }

    pub fn from_code(code: i8) -> Option<Self> {
        Self::CODES
            .iter()
            .find(|(_, known)| *known == code)
            .map(|(operation, _)| *operation)
    }

    /// Whether an ALLOW of `self` permits `wanted`.
    fn allows(self, wanted: Operation) -> bool {
        self == wanted
            || self == Operation::All
            || (wanted == Operation::Describe
                && matches!(
                    self,
                    Operation::Read | Operation::Write | Operation::Delete | Operation::Alter
                ))
            || (wanted == Operation::DescribeConfigs && self == Operation::AlterConfigs)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Permission {
    Deny,
    Allow,
}

impl Permission {
    pub fn code(self) -> i8 {
        match self {
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }

    pub fn from_code(code: i8) -> Option<Self> {
        match code {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }
}

/// One ACL: who may (or may not) do what to which resources, from where.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: ResourceType,
    pub resource_name: String,
    pub pattern_type: PatternType,
    /// `User:name`, or `User:*` for everyone.
    pub principal: String,
    /// A client IP, or `*` for any host.
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclBinding {
    /// Whether this ACL names the resource (literally, by `*`, or by prefix).
    fn names(&self, resource_type: ResourceType, name: &str) -> bool {
        self.resource_type == resource_type
            && match self.pattern_type {
                PatternType::Literal => self.resource_name == name || self.resource_name == WILDCARD,
                PatternType::Prefixed => name.starts_with(&self.resource_name),
            }
    }

    fn applies_to(&self, principal: &str, host: &str) -> bool {
        (self.principal == principal || self.principal == "User:*")
            && (self.host == WILDCARD || self.host == host)
    }
}

/// A DescribeAcls/DeleteAcls filter; None fields match anything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: Option<ResourceType>,
    pub resource_name: Option<String>,
    /// None: any pattern type.
    pub pattern: PatternFilter,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

/// How a filter matches pattern types.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PatternFilter {
    /// ANY: every pattern type, names compared literally.
    #[default]
    Any,
    /// MATCH: every ACL that would apply to the filter's resource name.
    Match,
    Exactly(PatternType),
}

impl AclFilter {
    pub fn matches(&self, acl: &AclBinding) -> bool {
        let resource = match (self.pattern, &self.resource_name) {
            (PatternFilter::Match, Some(name)) => match self.resource_type {
                Some(kind) => acl.names(kind, name),
                None => [
                    ResourceType::Topic,
                    ResourceType::Group,
                    ResourceType::Cluster,
                    ResourceType::TransactionalId,
                ]
                .into_iter()
                .any(|kind| acl.names(kind, name)),
            },
            (PatternFilter::Exactly(kind), name) => {
                acl.pattern_type == kind && name.as_ref().is_none_or(|name| *name == acl.resource_name)
            }
            (_, name) => name.as_ref().is_none_or(|name| *name == acl.resource_name),
        };
        resource
            && self.resource_type.is_none_or(|kind| kind == acl.resource_type)
            && self
                .principal
                .as_ref()
                .is_none_or(|principal| *principal == acl.principal)
            && self.host.as_ref().is_none_or(|host| *host == acl.host)
            && self.operation.is_none_or(|operation| operation == acl.operation)
            && self
                .permission
                .is_none_or(|permission| permission == acl.permission)
    }
}

/// What the authorizer knows besides the ACLs.
#[derive(Debug, Clone, Default)]
pub struct AuthorizerRules {
    pub super_users: Vec<String>,
    pub allow_if_no_acl: bool,
}

impl From<&crate::config::AuthorizerSettings> for AuthorizerRules {
    fn from(settings: &crate::config::AuthorizerSettings) -> Self {
        AuthorizerRules {
            super_users: settings.super_users.clone(),
            allow_if_no_acl: settings.allow_if_no_acl,
        }
    }
}

/// May `principal`, connected from `host`, perform `operation` on the resource?
pub fn authorize<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding>,
    rules: &AuthorizerRules,
    principal: &str,
    host: &str,
    operation: Operation,
    resource_type: ResourceType,
    name: &str,
) -> bool {
    if rules.super_users.iter().any(|user| user == principal) {
        return true;
    }
    let mut named = false;
    let mut allowed = false;
    for acl in acls {
        if !acl.names(resource_type, name) {
            continue;
        }
        named = true;
        if !acl.applies_to(principal, host) {
            continue;
        }
        match acl.permission {
            Permission::Deny if acl.operation == operation || acl.operation == Operation::All => {
                return false;
            }
            Permission::Deny => {}
            Permission::Allow => allowed |= acl.operation.allows(operation),
        }
    }
    allowed || (!named && rules.allow_if_no_acl)
}

/// Checks a new ACL as Kafka's CreateAcls does; the error is the message to answer.
pub fn validate(acl: &AclBinding) -> Result<(), String> {
    if acl.resource_name.is_empty() {
        return Err("Resource name must not be empty".into());
    }
    if acl.resource_type == ResourceType::Cluster && acl.resource_name != CLUSTER {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER}"
        ));
    }
    if acl.pattern_type == PatternType::Prefixed && acl.resource_name == WILDCARD {
        return Err("A PREFIXED ACL cannot name the wildcard `*`".into());
    }
    let Some((kind, name)) = acl.principal.split_once(':') else {
        return Err(format!(
            "Could not parse principal from `{}` (no colon is present separating the principal type from the principal name)",
            acl.principal
        ));
    };
    if kind.is_empty() || name.is_empty() {
        return Err(format!("Invalid principal `{}`", acl.principal));
    }
    if acl.host.is_empty() {
        return Err("Host must not be empty (use * for any host)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(
        kind: ResourceType,
        name: &str,
        pattern: PatternType,
        principal: &str,
        op: Operation,
        permission: Permission,
    ) -> AclBinding {
        AclBinding {
            resource_type: kind,
            resource_name: name.into(),
            pattern_type: pattern,
            principal: principal.into(),
            host: WILDCARD.into(),
            operation: op,
            permission,
        }
    }

    fn may(acls: &[AclBinding], principal: &str, op: Operation, kind: ResourceType, name: &str) -> bool {
        authorize(
            acls,
            &AuthorizerRules::default(),
            principal,
            "10.0.0.1",
            op,
            kind,
            name,
        )
    }

    use Operation::*;
    use PatternType::*;
    use Permission::*;
    use ResourceType::*;

    #[test]
    fn prefixed_write_allows_only_under_the_prefix() {
        let acls = [acl(Topic, "orders.", Prefixed, "User:alice", Write, Allow)];
        assert!(may(&acls, "User:alice", Write, Topic, "orders.eu"));
        assert!(!may(&acls, "User:alice", Write, Topic, "payments"));
        assert!(!may(&acls, "User:bob", Write, Topic, "orders.eu"));
        assert!(!may(&acls, "User:alice", Read, Topic, "orders.eu"));
        // Write implies Describe.
        assert!(may(&acls, "User:alice", Describe, Topic, "orders.eu"));
    }

    #[test]
    fn deny_beats_allow_and_all() {
        let acls = [
            acl(Topic, "*", Literal, "User:*", All, Allow),
            acl(Topic, "secret", Literal, "User:alice", Read, Deny),
        ];
        assert!(may(&acls, "User:alice", Read, Topic, "public"));
        assert!(!may(&acls, "User:alice", Read, Topic, "secret"));
        assert!(may(&acls, "User:bob", Read, Topic, "secret"));
        // A deny of Read does not deny Describe (only an exact operation or All).
        assert!(may(&acls, "User:alice", Describe, Topic, "secret"));
        let all_denied = [
            acl(Topic, "secret", Literal, "User:alice", Read, Allow),
            acl(Topic, "secret", Literal, "User:alice", All, Deny),
        ];
        assert!(!may(&all_denied, "User:alice", Read, Topic, "secret"));
    }

    #[test]
    fn no_acl_on_a_resource_falls_back_to_the_setting() {
        let acls = [acl(Topic, "a", Literal, "User:alice", Read, Allow)];
        let open = AuthorizerRules {
            super_users: vec![],
            allow_if_no_acl: true,
        };
        assert!(authorize(&acls, &open, "User:bob", "h", Read, Topic, "b"));
        assert!(!authorize(&acls, &open, "User:bob", "h", Read, Topic, "a"));
        assert!(!may(&acls, "User:bob", Read, Topic, "b"));
    }

    #[test]
    fn super_users_pass_everything_and_hosts_filter() {
        let rules = AuthorizerRules {
            super_users: vec!["User:admin".into()],
            allow_if_no_acl: false,
        };
        let mut host_bound = acl(Group, "g", Literal, "User:alice", Read, Allow);
        host_bound.host = "10.0.0.1".into();
        let acls = [host_bound, acl(Group, "g", Literal, "User:admin", All, Deny)];
        assert!(authorize(&acls, &rules, "User:admin", "h", Delete, Group, "g"));
        assert!(authorize(
            &acls,
            &rules,
            "User:alice",
            "10.0.0.1",
            Read,
            Group,
            "g"
        ));
        assert!(!authorize(
            &acls,
            &rules,
            "User:alice",
            "10.0.0.2",
            Read,
            Group,
            "g"
        ));
        // AlterConfigs implies DescribeConfigs.
        let acls = [acl(Cluster, CLUSTER, Literal, "User:ops", AlterConfigs, Allow)];
        assert!(may(&acls, "User:ops", DescribeConfigs, Cluster, CLUSTER));
        assert!(!may(&acls, "User:ops", Alter, Cluster, CLUSTER));
    }

    #[test]
    fn filters_match_as_kafka_filters_do() {
        let prefixed = acl(Topic, "orders.", Prefixed, "User:alice", Write, Allow);
        let literal = acl(Topic, "orders.eu", Literal, "User:bob", Read, Allow);
        let any = AclFilter::default();
        assert!(any.matches(&prefixed) && any.matches(&literal));
        let by_name = AclFilter {
            resource_name: Some("orders.eu".into()),
            ..AclFilter::default()
        };
        assert!(!by_name.matches(&prefixed) && by_name.matches(&literal));
        let matching = AclFilter {
            resource_type: Some(Topic),
            resource_name: Some("orders.eu".into()),
            pattern: PatternFilter::Match,
            ..AclFilter::default()
        };
        assert!(matching.matches(&prefixed) && matching.matches(&literal));
        let exactly = AclFilter {
            pattern: PatternFilter::Exactly(Prefixed),
            principal: Some("User:alice".into()),
            ..AclFilter::default()
        };
        assert!(exactly.matches(&prefixed) && !exactly.matches(&literal));
    }

    #[test]
    fn bad_acls_are_refused() {
        let good = acl(Topic, "t", Literal, "User:alice", Read, Allow);
        assert!(validate(&good).is_ok());
        for bad in [
            AclBinding {
                principal: "alice".into(),
                ..good.clone()
            },
            AclBinding {
                resource_name: String::new(),
                ..good.clone()
            },
            AclBinding {
                resource_type: Cluster,
                ..good.clone()
            },
            AclBinding {
                pattern_type: Prefixed,
                resource_name: "*".into(),
                ..good.clone()
            },
        ] {
            assert!(validate(&bad).is_err(), "{bad:?}");
        }
    }
}
