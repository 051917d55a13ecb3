//! AlterUserScramCredentials (API 51): sets and removes users' SCRAM credentials in the
//! cluster metadata. The client sends the salt and the salted password; the broker
//! keeps only the StoredKey and ServerKey derived from them (RFC 5802). Checks as
//! Kafka's: known mechanism, 4096..=16384 iterations, a user named once per mechanism,
//! deletions of existing credentials only. Users with a bad entry are answered with
//! its error and left unchanged; the others' changes commit together.

use super::RequestContext;
use crate::cluster::commands::{CommandError, ScramChange};
use crate::controller::rpc::{ControllerError, ControllerRequest};
use crate::security::scram::{MAX_ITERATIONS, MIN_ITERATIONS, ScramCredential, ScramHash};
use kafka_protocol::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::{AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse};
use kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

type Failure = (i16, String);

fn check(name: &str, mechanism: i8) -> Result<ScramHash, Failure> {
    if name.is_empty() {
        return Err((
            ResponseError::UnacceptableCredential.code(),
            "Username must not be empty".into(),
        ));
    }
    ScramHash::from_code(mechanism).ok_or_else(|| {
        (
            ResponseError::UnsupportedSaslMechanism.code(),
            format!("Unknown SCRAM mechanism {mechanism}"),
        )
    })
}

pub async fn handle(
    ctx: &RequestContext<'_>,
    request: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    if !ctx.allowed_on_cluster(crate::security::acl::Operation::Alter) {
        let mut users: Vec<String> = request
            .deletions
            .iter()
            .map(|deletion| deletion.name.to_string())
            .chain(
                request
                    .upsertions
                    .iter()
                    .map(|upsertion| upsertion.name.to_string()),
            )
            .collect();
        users.sort();
        users.dedup();
        let results = users
            .into_iter()
            .map(|user| {
                AlterUserScramCredentialsResult::default()
                    .with_user(StrBytes::from_string(user))
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(results);
    }
    let image = ctx.broker.image();
    // Per user: the first failure, or the changes to make.
    let mut users: BTreeMap<String, Result<Vec<ScramChange>, Failure>> = BTreeMap::new();
    let mut seen: BTreeMap<(String, i8), usize> = BTreeMap::new();
    for deletion in &request.deletions {
        *seen
            .entry((deletion.name.to_string(), deletion.mechanism))
            .or_default() += 1;
    }
    for upsertion in &request.upsertions {
        *seen
            .entry((upsertion.name.to_string(), upsertion.mechanism))
            .or_default() += 1;
    }
    let mut record = |name: &str, change: Result<ScramChange, Failure>| {
        let entry = users.entry(name.to_string()).or_insert_with(|| Ok(Vec::new()));
        match (entry.as_mut(), change) {
            (Ok(changes), Ok(change)) => changes.push(change),
            (Ok(_), Err(failure)) => *entry = Err(failure),
            (Err(_), _) => {}
        }
    };
    let duplicate = |name: &str, mechanism: i8| -> Result<(), Failure> {
        if seen.get(&(name.to_string(), mechanism)).copied().unwrap_or(0) > 1 {
            Err((
                ResponseError::DuplicateResource.code(),
                "A user credential cannot be altered twice in the same request".into(),
            ))
        } else {
            Ok(())
        }
    };
    for deletion in &request.deletions {
        let name = deletion.name.as_str();
        let change = check(name, deletion.mechanism)
            .and_then(|mechanism| duplicate(name, deletion.mechanism).map(|_| mechanism))
            .and_then(|mechanism| match image.scram_credential(name, mechanism) {
                Some(_) => Ok(ScramChange::Delete {
                    name: name.to_string(),
                    mechanism,
                }),
                None => Err((
                    ResponseError::ResourceNotFound.code(),
                    "Attempt to delete a user credential that does not exist".into(),
                )),
            });
        record(name, change);
    }
    for upsertion in &request.upsertions {
        let name = upsertion.name.as_str();
        let change = check(name, upsertion.mechanism)
            .and_then(|mechanism| duplicate(name, upsertion.mechanism).map(|_| mechanism))
            .and_then(|mechanism| {
                if upsertion.iterations < MIN_ITERATIONS {
                    return Err((
                        ResponseError::UnacceptableCredential.code(),
                        "Too few iterations".into(),
                    ));
                }
                if upsertion.iterations > MAX_ITERATIONS {
                    return Err((
                        ResponseError::UnacceptableCredential.code(),
                        "Too many iterations".into(),
                    ));
                }
                if upsertion.salt.is_empty() || upsertion.salted_password.is_empty() {
                    return Err((
                        ResponseError::UnacceptableCredential.code(),
                        "Salt and salted password must not be empty".into(),
                    ));
                }
                Ok(ScramChange::Upsert {
                    name: name.to_string(),
                    mechanism,
                    credential: ScramCredential::from_salted_password(
                        mechanism,
                        &upsertion.salt,
                        upsertion.iterations,
                        &upsertion.salted_password,
                    ),
                })
            });
        record(name, change);
    }
    let changes: Vec<ScramChange> = users
        .values()
        .filter_map(|changes| changes.as_ref().ok())
        .flatten()
        .cloned()
        .collect();
    let commit_failure: Option<Failure> = if changes.is_empty() {
        None
    } else {
        match super::commit_metadata(ctx.broker, ControllerRequest::AlterScramCredentials { changes }).await {
            Ok(()) => None,
            Err(ControllerError::Command(CommandError::ResourceNotFound(message))) => {
                Some((ResponseError::ResourceNotFound.code(), message))
            }
            Err(error) => Some((ResponseError::RequestTimedOut.code(), error.to_string())),
        }
    };
    let results = users
        .into_iter()
        .map(|(user, outcome)| {
            let result = AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match outcome.err().or_else(|| commit_failure.clone()) {
                Some((code, message)) => result
                    .with_error_code(code)
                    .with_error_message(Some(StrBytes::from_string(message))),
                None => result,
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
