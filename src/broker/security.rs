//! The authorizer as the broker applies it: ACLs from the cluster metadata, settings
//! from the broker config. With no `authorizer.class.name` everything is allowed.

use super::Broker;
use crate::security::acl::{self, AuthorizerRules, Operation, ResourceType};

impl Broker {
    /// Whether authorization is on (`authorizer.class.name` is set).
    pub fn authorizer_enabled(&self) -> bool {
        self.config.authorizer.enabled
    }

    /// May `principal`, connected from `host`, perform `operation` on the resource?
    pub fn authorize(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
        name: &str,
    ) -> bool {
        let settings = &self.config.authorizer;
        if !settings.enabled {
            return true;
        }
        let rules = AuthorizerRules::from(settings);
        let image = self.image();
        acl::authorize(
            image.acls.values(),
            &rules,
            principal,
            host,
            operation,
            resource_type,
            name,
        )
    }

    /// Whether the principal may perform `operation` on some resource of the type
    /// (Kafka's authorizeByResourceType: an ALLOW that could apply to any resource and
    /// no DENY of everything of that type).
    pub fn authorize_any(
        &self,
        principal: &str,
        host: &str,
        operation: Operation,
        resource_type: ResourceType,
    ) -> bool {
        let settings = &self.config.authorizer;
        if !settings.enabled || settings.super_users.iter().any(|user| user == principal) {
            return true;
        }
        let image = self.image();
        let names: Vec<&str> = image
            .acls
            .values()
            .filter(|acl| acl.resource_type == resource_type && acl.permission == acl::Permission::Allow)
            .map(|acl| acl.resource_name.as_str())
            .collect();
        names
            .into_iter()
            .any(|name| self.authorize(principal, host, operation, resource_type, name))
    }
}
