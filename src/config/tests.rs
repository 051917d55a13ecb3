use super::*;

#[test]
fn embedded_default_is_single_node_on_9092() {
    let config = BrokerConfig::load(None, &[]).expect("embedded config loads");
    assert_eq!(
        config.listener.map(|address| address.to_string()).as_deref(),
        Some("127.0.0.1:9092")
    );
    assert_eq!(config.log_dirs, vec![PathBuf::from("./data")]);
    assert_eq!(config.log.retention_ms, 168 * 3_600_000);
    assert_eq!(config.log.segment_bytes, 1 << 30);
}

#[test]
fn unknown_key_is_named() {
    let error = BrokerConfig::load(None, &["log.segmnet.bytes=5".into()]).unwrap_err();
    assert!(error.to_string().contains("log.segmnet.bytes"), "{error}");
}

#[test]
fn bad_value_is_named() {
    let error = BrokerConfig::load(None, &["log.segment.bytes=3".into()]).unwrap_err();
    assert!(error.to_string().contains("log.segment.bytes"), "{error}");
    let error = BrokerConfig::load(None, &["num.partitions=many".into()]).unwrap_err();
    assert!(error.to_string().contains("num.partitions"), "{error}");
}

#[test]
fn retention_precedence_is_ms_then_minutes_then_hours() {
    let config = BrokerConfig::load(None, &["log.retention.minutes=2".into()]).unwrap();
    assert_eq!(config.log.retention_ms, 120_000);
    let config = BrokerConfig::load(
        None,
        &["log.retention.minutes=2".into(), "log.retention.ms=5".into()],
    )
    .unwrap();
    assert_eq!(config.log.retention_ms, 5);
}

#[test]
fn cluster_settings_parse() {
    let config = BrokerConfig::load(
        None,
        &[
            "node.id=2".into(),
            "listeners=PLAINTEXT://127.0.0.1:9094,CONTROLLER://127.0.0.1:9095".into(),
            "controller.quorum.voters=1@127.0.0.1:9093,2@127.0.0.1:9095,3@localhost:9097".into(),
        ],
    )
    .unwrap();
    assert_eq!(config.listener.map(|address| address.port()), Some(9094));
    assert_eq!(
        config.controller_listener.map(|address| address.port()),
        Some(9095)
    );
    assert_eq!(config.quorum_voters.len(), 3);
    assert_eq!(config.quorum_voters[&3], "localhost:9097");
    assert!(config.process_roles.broker && config.process_roles.controller);
    // Dedicated roles.
    let broker_only = BrokerConfig::load(
        None,
        &[
            "node.id=4".into(),
            "process.roles=broker".into(),
            "controller.quorum.voters=1@127.0.0.1:9093".into(),
        ],
    )
    .unwrap();
    assert!(broker_only.process_roles.broker && !broker_only.process_roles.controller);
    let controller_only = BrokerConfig::load(
        None,
        &[
            "node.id=1".into(),
            "process.roles=controller".into(),
            "listeners=CONTROLLER://127.0.0.1:9093".into(),
            "controller.quorum.voters=1@127.0.0.1:9093".into(),
        ],
    )
    .unwrap();
    assert!(controller_only.listener.is_none());
    // The embedded default is a one-voter quorum without a CONTROLLER listener.
    let single = BrokerConfig::load(None, &[]).unwrap();
    assert!(single.quorum_voters.is_empty() && single.controller_listener.is_none());
}

#[test]
fn bad_cluster_settings_are_named() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["controller.quorum.voters=1@h:1,2@h:2"],
            "controller.quorum.voters",
        ),
        (&["controller.quorum.voters=x@h:1"], "controller.quorum.voters"),
        (&["controller.quorum.voters=0@h:1,1@h:2"], "listeners"),
        (&["listeners=SSL://127.0.0.1:1"], "ssl.keystore.location"),
        (&["listeners=EXTERNAL://127.0.0.1:1"], "listeners"),
        (
            &[
                "listeners=PLAINTEXT://127.0.0.1:1",
                "inter.broker.listener.name=OTHER",
            ],
            "inter.broker.listener.name",
        ),
        (
            &[
                "listeners=SASL_PLAINTEXT://127.0.0.1:1",
                "sasl.enabled.mechanisms=GSSAPI",
            ],
            "sasl.enabled.mechanisms",
        ),
        (
            &[
                "listeners=SSL://127.0.0.1:1",
                "ssl.keystore.location=/k.pem",
                "ssl.keystore.type=JKS",
            ],
            "ssl.keystore.type",
        ),
        (
            &[
                "listeners=SSL://127.0.0.1:1",
                "ssl.keystore.location=/k.pem",
                "ssl.client.auth=required",
            ],
            "ssl.client.auth",
        ),
        (&["listeners=CONTROLLER://127.0.0.1:1"], "listeners"),
        (&["process.roles=gateway"], "process.roles"),
        (&["process.roles=broker"], "controller.quorum.voters"),
        (
            &["process.roles=broker", "controller.quorum.voters=0@h:1"],
            "controller.quorum.voters",
        ),
        (&["process.roles=controller"], "controller.quorum.voters"),
        (
            &["process.roles=controller", "controller.quorum.voters=0@h:1"],
            "listeners",
        ),
    ];
    for (settings, key) in cases {
        let settings: Vec<String> = settings.iter().map(|setting| setting.to_string()).collect();
        let error = BrokerConfig::load(None, &settings).unwrap_err();
        assert!(error.to_string().contains(key), "{settings:?}: {error}");
    }
}

#[test]
fn topic_overrides_apply() {
    let config = BrokerConfig::load(None, &[]).unwrap();
    let overrides = BTreeMap::from([("segment.bytes".to_string(), "1000".to_string())]);
    assert_eq!(config.log_config(&overrides).segment_bytes, 1000);
}

#[test]
fn named_listeners_with_protocols_and_security() {
    let config = BrokerConfig::load(
        None,
        &[
            "listeners=INTERNAL://127.0.0.1:9101,EXTERNAL://0.0.0.0:9102,SASL_PLAINTEXT://127.0.0.1:9103".into(),
            "listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL,SASL_PLAINTEXT:SASL_PLAINTEXT".into(),
            "advertised.listeners=EXTERNAL://broker.example:19102".into(),
            "inter.broker.listener.name=INTERNAL".into(),
            "ssl.keystore.location=/etc/ferrolog/broker.pem".into(),
            "listener.name.external.ssl.client.auth=requested".into(),
            "ssl.truststore.location=/etc/ferrolog/ca.pem".into(),
            "listener.name.external.sasl.enabled.mechanisms=SCRAM-SHA-512".into(),
            r#"listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="alice-secret";"#.into(),
            "listener.name.sasl_plaintext.connections.max.reauth.ms=60000".into(),
        ],
    )
    .unwrap();
    let names: Vec<&str> = config
        .listeners
        .iter()
        .map(|listener| listener.name.as_str())
        .collect();
    assert_eq!(names, ["INTERNAL", "EXTERNAL", "SASL_PLAINTEXT"]);
    assert_eq!(config.inter_broker_listener, "INTERNAL");
    assert_eq!(config.listener.map(|address| address.port()), Some(9101));
    let external = &config.listeners[1];
    assert_eq!(external.protocol, SecurityProtocol::SaslSsl);
    assert_eq!(
        (external.advertised_host.as_str(), external.advertised_port),
        ("broker.example", 19102)
    );
    let tls = external.security.tls.as_ref().unwrap();
    assert_eq!(tls.client_auth, ClientAuth::Requested);
    assert_eq!(
        tls.private_key,
        PemSource::File("/etc/ferrolog/broker.pem".into())
    );
    assert_eq!(external.security.sasl_mechanisms, [SaslMechanism::ScramSha512]);
    let sasl = &config.listeners[2];
    assert_eq!(sasl.protocol, SecurityProtocol::SaslPlaintext);
    assert!(sasl.security.tls.is_none());
    assert_eq!(
        sasl.security.plain_users.get("alice").map(String::as_str),
        Some("alice-secret")
    );
    assert_eq!(
        sasl.security.client_login,
        Some(("admin".into(), "admin-secret".into()))
    );
    assert_eq!(sasl.security.max_reauth_ms, 60_000);
    assert_eq!(config.listeners[0].security, ListenerSecurity::default());
}

#[test]
fn controller_listener_over_ssl_and_kernel_tls_switch() {
    let base = [
        "node.id=1",
        "listeners=PLAINTEXT://127.0.0.1:9101,SSL://127.0.0.1:9102,CONTROLLER://127.0.0.1:9103",
        "ssl.keystore.location=/etc/ferrolog/broker.pem",
        "ssl.truststore.location=/etc/ferrolog/ca.pem",
    ];
    let load = |extra: &[&str]| {
        let settings: Vec<String> = base
            .iter()
            .chain(extra)
            .map(|setting| setting.to_string())
            .collect();
        BrokerConfig::load(None, &settings)
    };
    // PLAINTEXT unless the map says otherwise.
    let plain = load(&[]).unwrap();
    assert!(plain.controller_tls.is_none());
    assert!(plain.listeners[1].security.tls.as_ref().unwrap().kernel_tls);
    let ssl = load(&[
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SSL",
        "listener.name.controller.ssl.client.auth=required",
        "listener.name.ssl.ssl.kernel.tls.enable=false",
    ])
    .unwrap();
    let controller = ssl.controller_tls.as_ref().unwrap();
    assert_eq!(controller.client_auth, ClientAuth::Required);
    assert_eq!(
        controller.truststore,
        Some(PemSource::File("/etc/ferrolog/ca.pem".into()))
    );
    // The client SSL listener keeps its own settings.
    let client = ssl.listeners[1].security.tls.as_ref().unwrap();
    assert_eq!(client.client_auth, ClientAuth::None);
    assert!(!client.kernel_tls);
    // No SASL on the CONTROLLER listener; a bad switch value is named.
    for (extra, key) in [
        (
            "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SASL_SSL",
            "listener.security.protocol.map",
        ),
        ("ssl.kernel.tls.enable=maybe", "ssl.kernel.tls.enable"),
    ] {
        let error = load(&[extra]).unwrap_err();
        assert!(error.to_string().contains(key), "{extra}: {error}");
    }
}

#[test]
fn authorizer_settings_parse() {
    let config = BrokerConfig::load(None, &[]).unwrap();
    assert!(!config.authorizer.enabled);
    let config = BrokerConfig::load(
        None,
        &[
            "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer".into(),
            "super.users=User:admin;User:CN=broker,O=ferrolog".into(),
        ],
    )
    .unwrap();
    assert!(config.authorizer.enabled && !config.authorizer.allow_if_no_acl);
    assert_eq!(
        config.authorizer.super_users,
        ["User:admin", "User:CN=broker,O=ferrolog"]
    );
    assert!(BrokerConfig::load(None, &["authorizer.class.name=com.example.Other".into()]).is_err());
}
