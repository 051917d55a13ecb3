use anyhow::Context;
use clap::Parser;
use ferrolog::broker::Broker;
use ferrolog::config::BrokerConfig;
use std::path::PathBuf;

/// A Kafka-wire-compatible partitioned log broker.
#[derive(Parser, Debug)]
#[command(name = "ferrolog", version)]
struct Args {
    /// A YAML file of Kafka broker configs, layered over the embedded config/broker.yaml.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Set one broker config, e.g. --set log.dirs=/var/lib/ferrolog (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    set: Vec<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Print the committed cluster metadata of a stopped node (from the first of its
    /// log.dirs) in canonical form: cluster id, brokers, topics with ids, configs,
    /// replicas, ISR, leaders and epochs, and the producer-id mark.
    DumpMetadata,
}

/// What an operator reads by default: starts, listeners, leadership changes, fencing,
/// errors. openraft's internals (every vote, every unreachable voter on every heartbeat)
/// stay out; the controller logs quorum changes itself (`RUST_LOG=info,openraft=debug`
/// shows them).
const DEFAULT_LOG_FILTER: &str = "info,openraft=off";

fn main() -> std::process::ExitCode {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let base = std::env::var("RUST_LOG")
        .ok()
        .filter(|filter| tracing_subscriber::EnvFilter::try_new(filter).is_ok())
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_string());
    // The filter sits behind a reload handle: BROKER_LOGGER configs change it at run time.
    let (filter, handle) = tracing_subscriber::reload::Layer::new(tracing_subscriber::EnvFilter::new(&base));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Colors only on a terminal: a log file or journal gets plain text.
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    ferrolog::common::log_levels::install(
        &base,
        Box::new(move |directives| {
            let filter =
                tracing_subscriber::EnvFilter::try_new(directives).map_err(|error| error.to_string())?;
            handle.reload(filter).map_err(|error| error.to_string())
        }),
    );
    let args = Args::parse();
    let config = match BrokerConfig::load(args.config.as_deref(), &args.set) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("ferrolog: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    if let Some(Command::DumpMetadata) = args.command {
        let Some(dir) = config.log_dirs.first() else {
            eprintln!("ferrolog: log.dirs is empty");
            return std::process::ExitCode::from(2);
        };
        return match ferrolog::controller::read_committed_image(dir) {
            Ok(image) => {
                print!("{}", image.canonical_dump());
                std::process::ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("ferrolog: {error:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    // Partitions hold files open: take every descriptor the hard limit allows.
    match ferrolog::log::limits::raise_open_files_limit() {
        Ok(limit) => tracing::info!(
            soft = limit.soft,
            was = limit.soft_before,
            hard = limit.hard,
            max_map_count = ferrolog::log::limits::max_map_count(),
            "open file limit"
        ),
        Err(error) => tracing::warn!(%error, "cannot raise the open file limit"),
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("ferrolog: cannot start runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ferrolog: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(config: BrokerConfig) -> anyhow::Result<()> {
    if !config.process_roles.broker {
        return run_controller(config).await;
    }
    anyhow::ensure!(!config.listeners.is_empty(), "a broker needs a client listener");
    // Certificates and keys are read now, so a bad one stops the start at once.
    let contexts = config
        .listeners
        .iter()
        .map(|listener| {
            Ok((
                listener.address,
                ferrolog::security::ListenerContext::from_config(listener)?,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    if contexts.iter().any(|(_, context)| context.tls.is_some()) {
        // Probed once here; TLS connections are handed to the kernel after their
        // handshake where it takes their version and cipher.
        tracing::info!(
            "{}",
            ferrolog::security::ktls::describe(ferrolog::security::ktls::capabilities())
        );
    }
    // The client listeners open only once the broker is registered and has caught up
    // with the cluster metadata, so a client never sees a broker that cannot serve.
    let broker = tokio::select! {
        broker = Broker::start(config) => broker.context("cannot start the broker")?,
        _ = shutdown_signal() => return Ok(()),
    };
    let mut sockets = Vec::with_capacity(contexts.len());
    for (address, context) in contexts {
        let socket = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} ({})", context.name))?;
        tracing::info!(
            address = %socket.local_addr()?,
            listener = %context.name,
            protocol = context.protocol.name(),
            node_id = broker.config.node_id,
            "ferrolog listening"
        );
        sockets.push((socket, context));
    }
    if let Some(address) = broker.config.metrics_listener {
        let socket = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address} (metrics.listener)"))?;
        tracing::info!(address = %socket.local_addr()?, "metrics at http://{}/metrics", socket.local_addr()?);
        tokio::spawn(ferrolog::metrics::http::serve(socket, broker.metrics.clone()));
    }
    broker.spawn_background();
    // On SIGTERM the broker first hands its leaderships over while still serving, then
    // stops accepting requests on every listener.
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let draining = broker.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        draining.controlled_shutdown().await;
        let _ = stop_sender.send(true);
    });
    let shared = ferrolog::server::Shared::new(&broker);
    let servers = sockets.into_iter().map(|(socket, context)| {
        let mut stop = stop.clone();
        ferrolog::server::run_listener(
            socket,
            broker.clone(),
            context,
            ferrolog::server::ServerOptions::default(),
            shared.clone(),
            async move {
                let _ = stop.wait_for(|stopped| *stopped).await;
            },
        )
    });
    futures::future::join_all(servers).await;
    broker.shutdown().await?;
    Ok(())
}

/// A controller-only node: the quorum member and its CONTROLLER listener, no clients.
async fn run_controller(config: BrokerConfig) -> anyhow::Result<()> {
    let controller = ferrolog::controller::Controller::start(
        ferrolog::controller::ControllerConfig::from_broker_config(&config),
    )
    .await
    .context("cannot start the controller")?;
    tracing::info!(node_id = config.node_id, "ferrolog controller running");
    shutdown_signal().await;
    controller.shutdown().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
    tracing::info!("shutting down");
}
