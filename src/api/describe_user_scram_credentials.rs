//! DescribeUserScramCredentials (API 50): which SCRAM mechanisms (and iteration counts)
//! each user has, never the credentials themselves.

use super::RequestContext;
use crate::security::scram::ScramHash;
use kafka_protocol::ResponseError;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

pub fn handle(
    ctx: &RequestContext<'_>,
    request: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    if !ctx.allowed_on_cluster(crate::security::acl::Operation::Describe) {
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "not authorized to describe credentials",
            )));
    }
    let image = ctx.broker.image();
    let describe =
        |user: &str, credentials: Option<&BTreeMap<ScramHash, crate::security::scram::ScramCredential>>| {
            let result = DescribeUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.to_string()));
            match credentials {
                Some(credentials) => result.with_credential_infos(
                    credentials
                        .iter()
                        .map(|(mechanism, credential)| {
                            CredentialInfo::default()
                                .with_mechanism(mechanism.code())
                                .with_iterations(credential.iterations)
                        })
                        .collect(),
                ),
                None => result
                    .with_error_code(ResponseError::ResourceNotFound.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Attempt to describe a user credential that does not exist: {user}"
                    )))),
            }
        };
    let results = match request.users {
        Some(users) if !users.is_empty() => {
            let mut seen = BTreeMap::new();
            for user in &users {
                *seen.entry(user.name.to_string()).or_insert(0) += 1;
            }
            seen.iter()
                .map(|(user, count)| {
                    if *count > 1 {
                        DescribeUserScramCredentialsResult::default()
                            .with_user(StrBytes::from_string(user.clone()))
                            .with_error_code(ResponseError::DuplicateResource.code())
                            .with_error_message(Some(StrBytes::from_string(format!(
                                "Cannot describe SCRAM credentials for the same user twice in a single request: {user}"
                            ))))
                    } else {
                        describe(user, image.scram_credentials.get(user))
                    }
                })
                .collect()
        }
        _ => image
            .scram_credentials
            .iter()
            .map(|(user, credentials)| describe(user, Some(credentials)))
            .collect(),
    };
    DescribeUserScramCredentialsResponse::default().with_results(results)
}
