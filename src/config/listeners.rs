//! `listeners`, `advertised.listeners`, `listener.security.protocol.map` and the
//! inter-broker listener, as Kafka parses them.
//!
//! Every listener has a name (`NAME://HOST:PORT`) and a security protocol: the one the
//! protocol map gives its name, or the name itself when it is a protocol (PLAINTEXT,
//! SSL, SASL_PLAINTEXT, SASL_SSL). The listeners named in `controller.listener.names`
//! carry the quorum's own traffic; every other one serves clients.

use super::ConfigError;
use super::security::ListenerSecurity;
use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Kafka's four security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(self, SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl)
    }
}

/// One client listener: where it binds, what it advertises, how it is secured.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// The listener name, as clients' Metadata answers are chosen by it.
    pub name: String,
    pub address: SocketAddr,
    pub protocol: SecurityProtocol,
    pub advertised_host: String,
    pub advertised_port: u16,
    pub security: ListenerSecurity,
}

/// The parsed `listeners`: the client listeners in the order given and the CONTROLLER
/// listener's address, if any.
pub(super) struct ParsedListeners {
    pub client: Vec<(String, SocketAddr, SecurityProtocol)>,
    pub controller: Option<SocketAddr>,
}

/// Kafka's default `listener.security.protocol.map`.
pub const DEFAULT_PROTOCOL_MAP: &str =
    "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL";

fn invalid(key: &str, value: &str, reason: String) -> ConfigError {
    ConfigError::InvalidValue {
        key: key.into(),
        value: value.to_string(),
        reason,
    }
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`).
pub(super) fn parse_protocol_map(value: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    let key = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (name, protocol) = item
            .split_once(':')
            .ok_or_else(|| invalid(key, value, format!("`{item}` is not NAME:PROTOCOL")))?;
        let protocol = SecurityProtocol::parse(protocol).ok_or_else(|| {
            invalid(
                key,
                value,
                format!("`{protocol}` is not one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL"),
            )
        })?;
        if map.insert(name.trim().to_string(), protocol).is_some() {
            return Err(invalid(key, value, format!("`{name}` is mapped twice")));
        }
    }
    Ok(map)
}

/// The CONTROLLER listener's protocol: PLAINTEXT or SSL (its TLS certificate is its
/// login; there is no SASL on it).
pub(super) fn controller_protocol(
    name: &str,
    protocols: &BTreeMap<String, SecurityProtocol>,
) -> Result<SecurityProtocol, ConfigError> {
    let protocol = protocols
        .get(name)
        .copied()
        .or_else(|| SecurityProtocol::parse(name))
        .unwrap_or(SecurityProtocol::Plaintext);
    match protocol {
        SecurityProtocol::Plaintext | SecurityProtocol::Ssl => Ok(protocol),
        _ => Err(invalid(
            "listener.security.protocol.map",
            &format!("{name}:{}", protocol.name()),
            format!("the controller listener `{name}` supports PLAINTEXT or SSL"),
        )),
    }
}

/// Splits `listeners` into the client listeners and the CONTROLLER listener (the one
/// named in `controller.listener.names`).
pub(super) fn parse_listeners(
    value: &str,
    controller_names: &[String],
    protocols: &BTreeMap<String, SecurityProtocol>,
) -> Result<ParsedListeners, ConfigError> {
    let key = "listeners";
    let mut client: Vec<(String, SocketAddr, SecurityProtocol)> = Vec::new();
    let mut controller = None;
    for item in value.split(',').map(str::trim).filter(|item| !item.is_empty()) {
        let (name, _) = item
            .split_once("://")
            .ok_or_else(|| invalid(key, value, format!("`{item}` is not NAME://HOST:PORT")))?;
        let address = parse_listener(key, item)?;
        let protocol = protocols
            .get(name)
            .copied()
            .or_else(|| SecurityProtocol::parse(name));
        if controller_names
            .iter()
            .any(|controller_name| controller_name == name)
        {
            if controller.replace(address).is_some() {
                return Err(invalid(
                    key,
                    value,
                    format!("more than one listener for `{name}`"),
                ));
            }
            continue;
        }
        let protocol = protocol.ok_or_else(|| {
            invalid(
                key,
                value,
                format!("listener `{name}` has no protocol in listener.security.protocol.map"),
            )
        })?;
        if client.iter().any(|(existing, _, _)| existing == name) {
            return Err(invalid(
                key,
                value,
                format!("more than one listener for `{name}`"),
            ));
        }
        if client
            .iter()
            .any(|(_, existing, _)| existing.port() == address.port() && address.port() != 0)
        {
            return Err(invalid(
                key,
                value,
                format!("port {} is used twice", address.port()),
            ));
        }
        client.push((name.to_string(), address, protocol));
    }
    Ok(ParsedListeners { client, controller })
}

/// The advertised host and port of each client listener: its entry in
/// `advertised.listeners` (an entry without a name applies to the first listener), or
/// else its own address (127.0.0.1 for a wildcard).
pub(super) fn advertised(
    value: Option<&str>,
    client: &[(String, SocketAddr, SecurityProtocol)],
) -> Result<Vec<(String, u16)>, ConfigError> {
    let mut named: BTreeMap<String, (String, u16)> = BTreeMap::new();
    if let Some(value) = value {
        for (index, item) in value
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .enumerate()
        {
            let name = match item.split_once("://") {
                Some((name, _)) => name.to_string(),
                None if index == 0 => client
                    .first()
                    .map(|(name, _, _)| name.clone())
                    .unwrap_or_default(),
                None => {
                    return Err(invalid(
                        "advertised.listeners",
                        value,
                        format!("`{item}` is not NAME://HOST:PORT"),
                    ));
                }
            };
            if !client.iter().any(|(listener, _, _)| *listener == name) {
                return Err(invalid(
                    "advertised.listeners",
                    value,
                    format!("`{name}` is not one of the listeners"),
                ));
            }
            named.insert(name, parse_host_port("advertised.listeners", item)?);
        }
    }
    Ok(client
        .iter()
        .map(|(name, address, _)| {
            named.remove(name).unwrap_or_else(|| {
                let host = if address.ip().is_unspecified() {
                    "127.0.0.1".to_string()
                } else {
                    address.ip().to_string()
                };
                (host, address.port())
            })
        })
        .collect())
}

/// The inter-broker listener: `inter.broker.listener.name`, else the first listener
/// using `security.inter.broker.protocol`, else the first listener.
pub(super) fn inter_broker_listener(
    explicit_name: Option<&str>,
    protocol: SecurityProtocol,
    client: &[(String, SocketAddr, SecurityProtocol)],
) -> Result<Option<String>, ConfigError> {
    if let Some(name) = explicit_name.map(str::trim).filter(|name| !name.is_empty()) {
        if !client.iter().any(|(listener, _, _)| listener == name) {
            return Err(invalid(
                "inter.broker.listener.name",
                name,
                "must name one of the client listeners".into(),
            ));
        }
        return Ok(Some(name.to_string()));
    }
    Ok(client
        .iter()
        .find(|(_, _, listener_protocol)| *listener_protocol == protocol)
        .or(client.first())
        .map(|(name, _, _)| name.clone()))
}

pub(super) fn parse_host_port(key: &str, value: &str) -> Result<(String, u16), ConfigError> {
    let bad = |reason: &str| invalid(key, value, reason.to_string());
    let first = value.split(',').next().unwrap_or_default().trim();
    let address = match first.split_once("://") {
        Some((_, rest)) => rest,
        None => first,
    };
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad("expected NAME://HOST:PORT"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok((host.to_string(), port))
}

pub(super) fn parse_listener(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    let (host, port) = parse_host_port(key, value)?;
    let host = if host.is_empty() {
        "0.0.0.0".to_string()
    } else {
        host
    };
    let literal = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    use std::net::ToSocketAddrs;
    literal
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| invalid(key, value, "cannot resolve host".into()))
}
