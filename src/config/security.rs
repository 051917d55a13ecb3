//! The security settings of a listener (`ssl.*`, `sasl.*`, the JAAS login of each SASL
//! mechanism) and of the authorizer, under Kafka's names.
//!
//! A listener-scoped setting is looked up as `listener.name.<listener>.<key>` (the
//! listener name in lower case, as Kafka writes it) first, then as `<key>`.

use super::ConfigError;
use super::listeners::SecurityProtocol;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The SASL mechanisms the broker serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    pub const ALL: [SaslMechanism; 3] = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|mechanism| mechanism.name() == name.trim())
    }
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// PEM text, inline in the config or in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    Inline(String),
    File(PathBuf),
}

impl PemSource {
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            PemSource::Inline(text) => Ok(text.as_bytes().to_vec()),
            PemSource::File(path) => std::fs::read(path),
        }
    }
}

/// A TLS listener's certificate, key and trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `ssl.keystore.certificate.chain`, or the certificates in `ssl.keystore.location`.
    pub certificate_chain: PemSource,
    /// `ssl.keystore.key`, or the private key in `ssl.keystore.location`.
    pub private_key: PemSource,
    /// `ssl.truststore.certificates` or `ssl.truststore.location`: the CAs that sign
    /// client certificates (and, for inter-broker connections, other brokers').
    pub truststore: Option<PemSource>,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`: TLSv1.2 and/or TLSv1.3.
    pub tls12: bool,
    pub tls13: bool,
    /// `ssl.kernel.tls.enable`: hand sessions to the kernel's TLS after the handshake
    /// where it takes their version and cipher, keeping sendfile.
    pub kernel_tls: bool,
}

/// The security of one listener.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListenerSecurity {
    pub tls: Option<TlsSettings>,
    /// `sasl.enabled.mechanisms`, on SASL listeners.
    pub sasl_mechanisms: Vec<SaslMechanism>,
    /// PLAIN users from the `user_<name>="<password>"` entries of the listener's
    /// `plain.sasl.jaas.config`.
    pub plain_users: BTreeMap<String, String>,
    /// The `username`/`password` of the listener's JAAS configs: the login this broker
    /// uses when it connects to others over this listener.
    pub client_login: Option<(String, String)>,
    /// `connections.max.reauth.ms` (KIP-368); 0 means sessions never expire.
    pub max_reauth_ms: i64,
}

/// The authorizer's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// `authorizer.class.name` is set: ACLs are enforced.
    pub enabled: bool,
    /// `super.users`: principals (`User:name`) allowed everything.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

/// The authorizer classes accepted for `authorizer.class.name`.
pub const AUTHORIZER_CLASSES: &[&str] = &[
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
    "kafka.security.authorizer.AclAuthorizer",
    "ferrolog.StandardAuthorizer",
];

/// Keys that may be set per listener as `listener.name.<listener>.<key>`.
pub fn is_listener_scoped(key: &str) -> bool {
    key.starts_with("ssl.")
        || key == "sasl.enabled.mechanisms"
        || key == "connections.max.reauth.ms"
        || key.ends_with(".sasl.jaas.config")
}

/// Splits `listener.name.<listener>.<key>` into the listener (lower case) and the key.
pub fn split_listener_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix("listener.name.")?;
    let (listener, key) = rest.split_once('.')?;
    (!listener.is_empty() && is_listener_scoped(key)).then_some((listener, key))
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Resolves a listener's security from `get` (which gives a key's explicit value or
/// its default).
pub(super) fn listener_security(
    listener: &str,
    protocol: SecurityProtocol,
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<ListenerSecurity, ConfigError> {
    let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
    let scoped = |key: &str| -> (String, Option<String>) {
        let prefixed = format!("{prefix}{key}");
        match get(&prefixed) {
            Some(value) => (prefixed, Some(value)),
            None => (key.to_string(), get(key)),
        }
    };
    let mut security = ListenerSecurity::default();
    let (key, reauth) = scoped("connections.max.reauth.ms");
    security.max_reauth_ms = match reauth {
        Some(value) => value
            .trim()
            .parse()
            .ok()
            .filter(|ms: &i64| *ms >= 0)
            .ok_or_else(|| invalid(&key, &value, "must be a non-negative integer"))?,
        None => 0,
    };
    if protocol.uses_tls() {
        security.tls = Some(tls_settings(&scoped)?);
    }
    if protocol.uses_sasl() {
        let (key, value) = scoped("sasl.enabled.mechanisms");
        let value = value.unwrap_or_default();
        for name in value.split(',').map(str::trim).filter(|name| !name.is_empty()) {
            let mechanism = SaslMechanism::parse(name).ok_or_else(|| {
                invalid(
                    &key,
                    &value,
                    "supported mechanisms: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
                )
            })?;
            if !security.sasl_mechanisms.contains(&mechanism) {
                security.sasl_mechanisms.push(mechanism);
            }
        }
        if security.sasl_mechanisms.is_empty() {
            return Err(invalid(
                &key,
                &value,
                "a SASL listener needs at least one mechanism",
            ));
        }
        for mechanism in &security.sasl_mechanisms {
            let (key, jaas) = scoped(&format!(
                "{}.sasl.jaas.config",
                mechanism.name().to_ascii_lowercase()
            ));
            let Some(jaas) = jaas else { continue };
            let options = parse_jaas(&jaas).map_err(|reason| invalid(&key, "(hidden)", reason))?;
            if let (Some(user), Some(password)) = (options.get("username"), options.get("password")) {
                security.client_login = Some((user.clone(), password.clone()));
            }
            if *mechanism == SaslMechanism::Plain {
                for (option, password) in &options {
                    if let Some(user) = option.strip_prefix("user_") {
                        security.plain_users.insert(user.to_string(), password.clone());
                    }
                }
            }
        }
    }
    Ok(security)
}

fn tls_settings(scoped: &dyn Fn(&str) -> (String, Option<String>)) -> Result<TlsSettings, ConfigError> {
    let (key, keystore_type) = scoped("ssl.keystore.type");
    if let Some(kind) = keystore_type.filter(|kind| !kind.trim().eq_ignore_ascii_case("PEM")) {
        return Err(invalid(&key, &kind, "only PEM keystores are supported"));
    }
    let (key, truststore_type) = scoped("ssl.truststore.type");
    if let Some(kind) = truststore_type.filter(|kind| !kind.trim().eq_ignore_ascii_case("PEM")) {
        return Err(invalid(&key, &kind, "only PEM truststores are supported"));
    }
    let (key, password) = scoped("ssl.key.password");
    if password.is_some_and(|password| !password.is_empty()) {
        return Err(invalid(
            &key,
            "(hidden)",
            "encrypted private keys are not supported; use an unencrypted PEM key",
        ));
    }
    let (_, chain) = scoped("ssl.keystore.certificate.chain");
    let (_, key_pem) = scoped("ssl.keystore.key");
    let (location_key, location) = scoped("ssl.keystore.location");
    let (certificate_chain, private_key) = match (chain, key_pem, location) {
        (Some(chain), Some(key_pem), _) => (PemSource::Inline(chain), PemSource::Inline(key_pem)),
        (_, _, Some(location)) => {
            let path = PathBuf::from(location.trim());
            (PemSource::File(path.clone()), PemSource::File(path))
        }
        _ => {
            return Err(invalid(
                &location_key,
                "",
                "a TLS listener needs ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key",
            ));
        }
    };
    let (_, trusted) = scoped("ssl.truststore.certificates");
    let (_, trust_location) = scoped("ssl.truststore.location");
    let truststore = match (trusted, trust_location) {
        (Some(text), _) => Some(PemSource::Inline(text)),
        (None, Some(location)) => Some(PemSource::File(PathBuf::from(location.trim()))),
        (None, None) => None,
    };
    let (key, auth) = scoped("ssl.client.auth");
    let auth = auth.unwrap_or_else(|| "none".into());
    let client_auth = match auth.trim() {
        "none" => ClientAuth::None,
        "requested" => ClientAuth::Requested,
        "required" => ClientAuth::Required,
        _ => return Err(invalid(&key, &auth, "must be none, requested or required")),
    };
    if client_auth != ClientAuth::None && truststore.is_none() {
        return Err(invalid(
            &key,
            &auth,
            "client certificates need ssl.truststore.location or ssl.truststore.certificates",
        ));
    }
    let (key, protocols) = scoped("ssl.enabled.protocols");
    let protocols = protocols.unwrap_or_else(|| "TLSv1.2,TLSv1.3".into());
    let mut tls12 = false;
    let mut tls13 = false;
    for item in protocols
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        match item {
            "TLSv1.2" => tls12 = true,
            "TLSv1.3" => tls13 = true,
            _ => return Err(invalid(&key, &protocols, "supported protocols: TLSv1.2, TLSv1.3")),
        }
    }
    if !tls12 && !tls13 {
        return Err(invalid(&key, &protocols, "needs TLSv1.2 or TLSv1.3"));
    }
    let (key, rules) = scoped("ssl.principal.mapping.rules");
    if let Some(rules) = rules.filter(|rules| rules.trim() != "DEFAULT") {
        return Err(invalid(&key, &rules, "only DEFAULT is supported"));
    }
    let (key, kernel_tls) = scoped("ssl.kernel.tls.enable");
    let kernel_tls = match kernel_tls.as_deref().map(str::trim) {
        None | Some("true") => true,
        Some("false") => false,
        Some(other) => return Err(invalid(&key, other, "must be true or false")),
    };
    Ok(TlsSettings {
        certificate_chain,
        private_key,
        truststore,
        client_auth,
        tls12,
        tls13,
        kernel_tls,
    })
}

/// The authorizer settings: `authorizer.class.name`, `super.users`,
/// `allow.everyone.if.no.acl.found`.
pub(super) fn authorizer_settings(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<AuthorizerSettings, ConfigError> {
    let class = get("authorizer.class.name").unwrap_or_default();
    let class = class.trim();
    if !class.is_empty() && !AUTHORIZER_CLASSES.contains(&class) {
        return Err(invalid(
            "authorizer.class.name",
            class,
            format!("supported authorizers: {}", AUTHORIZER_CLASSES.join(", ")),
        ));
    }
    let super_users = get("super.users").unwrap_or_default();
    let mut users = Vec::new();
    for principal in super_users
        .split(';')
        .map(str::trim)
        .filter(|item| !item.is_empty())
    {
        if !principal.contains(':') {
            return Err(invalid(
                "super.users",
                &super_users,
                "principals are TYPE:NAME, e.g. User:admin",
            ));
        }
        users.push(principal.to_string());
    }
    Ok(AuthorizerSettings {
        enabled: !class.is_empty(),
        super_users: users,
        allow_if_no_acl: get("allow.everyone.if.no.acl.found").as_deref().map(str::trim) == Some("true"),
    })
}

/// Parses a JAAS login line: `<LoginModule class> required key="value" ...;` into its
/// options. Values may be quoted (with `\"` and `\\` escapes) or bare.
pub fn parse_jaas(text: &str) -> Result<BTreeMap<String, String>, String> {
    let text = text.trim();
    let text = text.strip_suffix(';').unwrap_or(text).trim_end();
    let mut words = text.splitn(3, char::is_whitespace);
    let module = words.next().unwrap_or_default();
    let flag = words.next().unwrap_or_default();
    if module.is_empty() || !matches!(flag, "required" | "requisite" | "sufficient" | "optional") {
        return Err("expected `<LoginModule> required key=\"value\" ...;`".into());
    }
    let mut rest = words.next().unwrap_or_default().chars().peekable();
    let mut options = BTreeMap::new();
    loop {
        while rest.peek().is_some_and(|c| c.is_whitespace()) {
            rest.next();
        }
        if rest.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(&c) = rest.peek() {
            if c == '=' || c.is_whitespace() {
                break;
            }
            key.push(c);
            rest.next();
        }
        while rest.peek().is_some_and(|c| c.is_whitespace()) {
            rest.next();
        }
        if rest.next() != Some('=') || key.is_empty() {
            return Err(format!("option `{key}` has no `=value`"));
        }
        while rest.peek().is_some_and(|c| c.is_whitespace()) {
            rest.next();
        }
        let mut value = String::new();
        if rest.peek() == Some(&'"') {
            rest.next();
            let mut closed = false;
            while let Some(c) = rest.next() {
                match c {
                    '\\' => {
                        if let Some(escaped) = rest.next() {
                            value.push(escaped);
                        }
                    }
                    '"' => {
                        closed = true;
                        break;
                    }
                    c => value.push(c),
                }
            }
            if !closed {
                return Err(format!("option `{key}` has an unterminated quote"));
            }
        } else {
            while let Some(&c) = rest.peek() {
                if c.is_whitespace() {
                    break;
                }
                value.push(c);
                rest.next();
            }
        }
        options.insert(key, value);
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jaas_options_parse_quoted_and_bare_values() {
        let options = parse_jaas(
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required
               username="admin" password="a \"quoted\" secret"
               user_admin="admin-secret" user_alice=alice-secret;"#,
        )
        .unwrap();
        assert_eq!(options["username"], "admin");
        assert_eq!(options["password"], "a \"quoted\" secret");
        assert_eq!(options["user_admin"], "admin-secret");
        assert_eq!(options["user_alice"], "alice-secret");
        assert!(parse_jaas("PlainLoginModule username=\"x\";").is_err());
        assert!(parse_jaas("PlainLoginModule required username=\"x;").is_err());
        assert!(parse_jaas("PlainLoginModule required username;").is_err());
    }

    #[test]
    fn listener_keys_split_only_for_listener_scoped_settings() {
        assert_eq!(
            split_listener_key("listener.name.sasl_ssl.plain.sasl.jaas.config"),
            Some(("sasl_ssl", "plain.sasl.jaas.config"))
        );
        assert_eq!(
            split_listener_key("listener.name.external.ssl.client.auth"),
            Some(("external", "ssl.client.auth"))
        );
        assert_eq!(split_listener_key("listener.name.external.num.partitions"), None);
        assert_eq!(split_listener_key("ssl.client.auth"), None);
    }
}
