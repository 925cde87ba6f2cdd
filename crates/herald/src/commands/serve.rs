//! `herald serve`: runs the hub.

use std::sync::Arc;
use std::time::Duration;

use herald_server::config::IssuerConfig;
use herald_server::{serve, serve_admin, serve_tls};
use herald_token::claims::{Action, AuthorizationDetail, TopicMatcher};
use herald_token::{MintRequest, SigningKey, mint};
use url::Url;

use crate::commands::overrides::Overrides;
use crate::error::CliError;

/// The issuer of development tokens.
const DEV_ISSUER: &str = "herald-dev";

/// Arguments of `herald serve`. Values come from the configuration file, then
/// `HERALD_*` environment variables, then flags, each overriding the last.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    overrides: Overrides,
    /// Development mode: generates a token secret and prints ready-made
    /// publisher and subscriber tokens with copy-paste curl lines.
    #[arg(long)]
    dev: bool,
    /// Log lines as human-readable text or as JSON objects (one per line).
    #[arg(long, env = "HERALD_LOG_FORMAT", default_value = "text", value_parser = log_format)]
    pub log_format: LogFormat,
    /// In development mode, the HS256 secret to use instead of a random one
    /// (so tokens stay valid across restarts).
    #[arg(long, env = "HERALD_DEV_SECRET", hide_env_values = true)]
    dev_secret: Option<String>,
}

/// Parses `--log-format`, naming the variable too: clap names only the flag.
fn log_format(text: &str) -> Result<LogFormat, String> {
    match text {
        "text" => Ok(LogFormat::Text),
        "json" => Ok(LogFormat::Json),
        other => Err(format!(
            "`{}` is not a log format: use text or json (from the flag, or HERALD_LOG_FORMAT \
             in the environment)",
            other.escape_debug()
        )),
    }
}

/// How log lines are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Runs `herald serve`.
pub async fn run(args: Args) -> Result<(), CliError> {
    // Before the banner, which scripts take as "ready for signals too".
    ignore_hangups();
    let config_file = args.overrides.config.clone();
    let loaded = args.overrides.load(None)?;
    for warning in loaded.warnings() {
        tracing::warn!("{warning}");
    }
    let mut config = loaded.config.clone();
    let dev_secret = match args.dev_secret {
        // Left over in the environment of a production start: no reason to
        // refuse it, every reason to say it is not used.
        Some(secret) if !args.dev => {
            if std::env::var("HERALD_DEV_SECRET").is_ok_and(|env| env == secret) {
                tracing::warn!("HERALD_DEV_SECRET is set but --dev is not: it is ignored");
                None
            } else {
                return Err(CliError::Usage(
                    "--dev-secret applies only with --dev".into(),
                ));
            }
        }
        other => other,
    };
    // Before listening: a bad certificate is a usage error naming the file.
    let tls = config
        .tls
        .load()
        .map_err(|e| CliError::Usage(e.to_string()))?
        .map(Arc::new);
    // Before binding, which would otherwise report an overlap as a port in use.
    config
        .check_listeners()
        .map_err(|e| CliError::Usage(e.to_string()))?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| CliError::Runtime(format!("cannot listen on {}: {e}", config.listen)))?;
    config.listen = listener
        .local_addr()
        .map_err(|e| CliError::Runtime(format!("cannot read the listening address: {e}")))?;

    // Bound before anything is printed: scripts take the banner for "ready".
    let admin = match config.admin.listen {
        Some(address) => {
            let admin = tokio::net::TcpListener::bind(address).await.map_err(|e| {
                CliError::Runtime(format!(
                    "cannot listen on {address} for the admin routes: {e}"
                ))
            })?;
            let local = admin
                .local_addr()
                .map_err(|e| CliError::Runtime(format!("cannot read the admin address: {e}")))?;
            Some((admin, local))
        }
        None => None,
    };

    let dev_secret = if args.dev {
        if let Some(secret) = &dev_secret {
            SigningKey::hs256(secret.as_bytes()).map_err(|e| {
                CliError::Usage(format!("--dev-secret (or HERALD_DEV_SECRET): {e}"))
            })?;
        }
        let secret = dev_secret.unwrap_or_else(herald_token::keys::generate_hs256_secret);
        config.auth.issuers.push(IssuerConfig {
            id: DEV_ISSUER.into(),
            hs256_secrets: vec![secret.clone()],
            ..IssuerConfig::default()
        });
        Some(secret)
    } else {
        None
    };

    raise_file_limit(config.limits.max_connections);
    // The router is the hub's alone: nothing to skip by serving by hand.
    config.hand_served = true;
    let (herald, verifier) = config
        .build()
        .map_err(|e| CliError::Usage(loaded.explain(&e)))?;
    let _jwks = verifier.as_ref().map(|v| v.spawn_jwks_refresh());
    let hub_url = herald.hub().url().clone();
    let transport = if tls.is_some() {
        "HTTPS: HTTP/2 and HTTP/1.1"
    } else {
        "HTTP/1.1 and h2c"
    };
    // Scripts parse this first line: keep its shape.
    say(format_args!(
        "herald listening on {} (hub URL {hub_url})",
        config.listen
    ));
    say(format_args!("transport: {transport}"));
    // The same in the log, which is what a supervisor keeps.
    tracing::info!(
        listen = %config.listen,
        hub_url = %hub_url,
        transport,
        log = %config.log.kind,
        config = config_file
            .as_ref()
            .map_or_else(|| "(none)".into(), |p| p.display().to_string()),
        "serving"
    );
    match dev_secret {
        Some(secret) => print_dev_banner(&hub_url, &secret)?,
        None if verifier.is_none() => tracing::warn!(
            "no token issuer is configured: nobody can publish; add [[auth.issuers]] to the configuration or run with --dev"
        ),
        None => {}
    }
    // The admin listener outlives the hub's serving, so that `/readyz`
    // answers 503 (rather than nothing) while the shutdown drains.
    let (admin_stop, admin_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some((admin, local)) = admin {
        say(format_args!(
            "herald admin listening on {local} (/metrics, /healthz, /readyz)"
        ));
        tracing::info!(admin = %local, "serving /metrics, /healthz and /readyz");
        let routes = herald.admin_router();
        let head_timeout = config.limits.request_head_timeout;
        tokio::spawn(serve_admin(admin, routes, head_timeout, async {
            let _ = admin_stopped.await;
        }));
    }
    let router = herald.standalone_router();
    let shutdown = {
        let hub = herald.hub().clone();
        async move {
            shutdown_signal().await;
            force_on_second_signal(hub);
        }
    };
    let served = match tls {
        Some(tls) => serve_tls(listener, &herald, router, tls, shutdown).await,
        None => serve(listener, &herald, router, shutdown).await,
    };
    // Whatever ended the serving, the log is closed before the process
    // exits, and a shutdown that could not make everything durable or
    // checkpointed says so in its exit status, not only in the log.
    let hub = herald.hub().clone();
    let closed = tokio::task::spawn_blocking(move || hub.close_log())
        .await
        .map_err(|e| CliError::Runtime(format!("closing the update log failed: {e}")))?;
    let _ = admin_stop.send(());
    served.map_err(|e| CliError::Runtime(format!("the server failed: {e}")))?;
    closed.map_err(|e| {
        CliError::Runtime(format!(
            "at shutdown, {e}; the journal keeps what was acknowledged, and the next start applies it"
        ))
    })
}

/// Prints a line of the banner on stdout. A hub whose stdout is gone (a
/// reader that stopped after the URL, `| head -1`) goes on serving, where
/// `println!` would panic.
fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn print_dev_banner(hub_url: &Url, secret: &str) -> Result<(), CliError> {
    let key = SigningKey::hs256(secret.as_bytes()).map_err(|e| CliError::Usage(e.to_string()))?;
    let token = |action: Action, subject: &str| {
        let request = MintRequest::new(DEV_ISSUER, hub_url.as_str())
            .with_subject(subject)
            .with_ttl(Duration::from_secs(24 * 3600))
            .with_detail(AuthorizationDetail::new(
                vec![action],
                vec![TopicMatcher::exact("*")],
            ));
        mint(&request, &key)
            .map_err(|e| CliError::Runtime(format!("cannot mint a development token: {e}")))
    };
    let publisher = token(Action::Publish, "dev-publisher")?;
    let subscriber = token(Action::Subscribe, "dev-subscriber")?;
    say(format_args!(
        "\nDevelopment mode: do not expose this hub. Tokens are valid for 24 hours.\n\
         \n  token secret (HS256, issuer \"{DEV_ISSUER}\"): {secret}\
         \n  publisher token:  {publisher}\
         \n  subscriber token: {subscriber}\n\
         \nSubscribe to every topic, private updates included:\
         \n  curl -N -H 'Authorization: Bearer {subscriber}' '{hub_url}?match=*'\n\
         \nPublish an update:\
         \n  curl -H 'Authorization: Bearer {publisher}' -d 'topic=https://example.com/books/1' -d 'data={{\"title\":\"Dune\"}}' {hub_url}\n"
    ));
    Ok(())
}

/// Every subscriber holds a socket: raise the open-file limit as far as the
/// OS allows, and say so plainly when it stays below what is configured.
fn raise_file_limit(max_connections: usize) {
    // Sockets beyond subscribers: publishers, the log's files, the listener.
    const HEADROOM: u64 = 256;
    let wanted = max_connections as u64 + HEADROOM;
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < wanted => tracing::warn!(
            limit,
            max_connections,
            "the open-file limit is too low for limits.max_connections; raise it (ulimit -n, LimitNOFILE=) or lower the setting"
        ),
        Ok(limit) => tracing::info!(limit, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot read or raise the open-file limit"),
    }
}

/// A graceful shutdown on SIGINT, SIGTERM or SIGQUIT (which would otherwise
/// end the process at once, without the streams' reconnect hints or a clean
/// close of the log).
async fn shutdown_signal() {
    shutdown_signal_quietly().await;
    tracing::info!(
        "shutting down: open connections get until shutdown_timeout; a second signal stops waiting"
    );
}

/// SIGINT, SIGTERM or SIGQUIT.
async fn shutdown_signal_quietly() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match (signal(SignalKind::terminate()), signal(SignalKind::quit())) {
            (Ok(mut term), Ok(mut quit)) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = quit.recv() => {},
                }
            }
            _ => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

/// Once a graceful shutdown has begun, a second SIGINT, SIGTERM or SIGQUIT
/// stops waiting for open connections (up to `shutdown_timeout`, which may
/// be long): the log is closed, so nothing acknowledged is lost, and the
/// process exits 1.
fn force_on_second_signal(hub: herald_server::hub::Hub) {
    tokio::spawn(async move {
        shutdown_signal_quietly().await;
        tracing::warn!("a second signal: exiting without waiting for open connections any longer");
        let closed = tokio::task::spawn_blocking(move || hub.close_log()).await;
        if let Ok(Err(error)) = closed {
            tracing::error!(%error, "closing the update log failed; the journal keeps what was acknowledged");
        }
        std::process::exit(1);
    });
}

/// SIGHUP, which supervisors and scripts send to mean "reload" and a closing
/// terminal sends on its own, would end the process at once: say instead
/// what herald reloads by itself and carry on.
fn ignore_hangups() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hangup) => {
                tokio::spawn(async move {
                    while hangup.recv().await.is_some() {
                        tracing::warn!(
                            "SIGHUP received and ignored: herald re-reads its TLS certificate \
                             every tls.reload_interval and its JWK Sets every auth.jwks_refresh; \
                             other settings take a restart (SIGTERM drains gracefully)"
                        );
                    }
                });
            }
            Err(error) => tracing::warn!(%error, "cannot handle SIGHUP"),
        }
    }
}
