//! `herald token`: mints an RFC 9068 access token for a Mercure hub (development and tests).
//!
//! The token carries one Mercure authorization detail for `--publish` matchers and one for
//! `--subscribe` matchers. Usage errors (a bad ttl, algorithm or key, a missing or doubled key
//! option) exit with 2; failures to read the key file or to sign exit with 1.

use std::path::PathBuf;
use std::time::Duration;

use herald_token::{
    Action, Algorithm, AuthorizationDetail, MintRequest, SigningKey, TopicMatcher, WILDCARD,
};

use crate::error::CliError;

/// Arguments of `herald token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The issuer identifier (`iss`) the hub trusts the key under.
    #[arg(long, value_name = "ISSUER")]
    issuer: String,
    /// The hub's resource identifier (`aud`); repeat for several hubs.
    #[arg(long, value_name = "RESOURCE", required = true)]
    audience: Vec<String>,
    /// The subject (`sub`); a random `urn:uuid:` by default.
    #[arg(long, value_name = "SUBJECT")]
    subject: Option<String>,
    /// The client identifier (`client_id`); the issuer by default.
    #[arg(long, value_name = "CLIENT_ID")]
    client_id: Option<String>,
    /// Topic matchers the token may publish to (`*` is the wildcard).
    #[arg(long, value_name = "MATCHER", num_args = 1..)]
    publish: Vec<String>,
    /// Topic matchers the token may receive private updates for (`*` is the wildcard).
    #[arg(long, value_name = "MATCHER", num_args = 1..)]
    subscribe: Vec<String>,
    /// Write the matchers as `urlpattern` matchers instead of `exact` ones.
    #[arg(long)]
    urlpattern: bool,
    /// The token's lifetime, e.g. `30s`, `15m`, `1h`.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    ttl: String,
    /// Sign with HS256 and this shared secret (at least 32 bytes).
    #[arg(long, value_name = "SECRET")]
    hs256_secret: Option<String>,
    /// Sign with the private key in this PEM file (Ed25519, P-256 or RSA).
    #[arg(long, value_name = "PEM_FILE")]
    key: Option<PathBuf>,
    /// The algorithm for `--key` (ES256, EdDSA or RS256); inferred from the key when omitted.
    #[arg(long, value_name = "ALG")]
    alg: Option<String>,
    /// The key id (`kid`) to write in the header.
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
}

/// Runs `herald token`: prints the token on standard output.
pub fn run(args: Args) -> Result<(), CliError> {
    let token = mint_token(&args)?;
    println!("{token}");
    Ok(())
}

fn mint_token(args: &Args) -> Result<String, CliError> {
    let ttl = parse_ttl(&args.ttl)?;
    let alg = args
        .alg
        .as_deref()
        .map(|name| {
            name.parse::<Algorithm>()
                .map_err(|e| CliError::Usage(format!("invalid --alg: {e}")))
        })
        .transpose()?;
    let key = signing_key(args, alg)?;
    let key = match &args.kid {
        Some(kid) => key.with_kid(kid),
        None => key,
    };

    let mut request = MintRequest::new(&args.issuer, args.audience[0].clone()).with_ttl(ttl);
    request.audience = args.audience.clone();
    if let Some(subject) = &args.subject {
        request.subject = subject.clone();
    }
    if let Some(client_id) = &args.client_id {
        request.client_id = client_id.clone();
    }
    for (action, matchers) in [
        (Action::Publish, &args.publish),
        (Action::Subscribe, &args.subscribe),
    ] {
        if !matchers.is_empty() {
            let topics = matchers
                .iter()
                .map(|m| matcher(m, args.urlpattern))
                .collect();
            request
                .authorization_details
                .push(AuthorizationDetail::new(vec![action], topics));
        }
    }
    herald_token::mint(&request, &key).map_err(|e| match e {
        herald_token::Error::Mint(_) => CliError::Usage(e.to_string()),
        e => CliError::Runtime(e.to_string()),
    })
}

fn matcher(pattern: &str, urlpattern: bool) -> TopicMatcher {
    if urlpattern && pattern != WILDCARD {
        TopicMatcher::urlpattern(pattern)
    } else {
        TopicMatcher::exact(pattern)
    }
}

fn parse_ttl(text: &str) -> Result<Duration, CliError> {
    let ttl = humantime::parse_duration(text)
        .map_err(|e| CliError::Usage(format!("invalid --ttl {text:?}: {e}")))?;
    if ttl < Duration::from_secs(1) {
        return Err(CliError::Usage(format!(
            "invalid --ttl {text:?}: the lifetime must be at least one second"
        )));
    }
    Ok(ttl)
}

fn signing_key(args: &Args, alg: Option<Algorithm>) -> Result<SigningKey, CliError> {
    match (&args.hs256_secret, &args.key) {
        (None, None) => Err(CliError::Usage(
            "no signing key: pass --hs256-secret SECRET or --key PEM_FILE".into(),
        )),
        (Some(_), Some(_)) => Err(CliError::Usage(
            "--hs256-secret and --key are exclusive: pass only one signing key".into(),
        )),
        (Some(secret), None) => {
            if alg.is_some_and(|alg| alg != Algorithm::HS256) {
                return Err(CliError::Usage(
                    "--hs256-secret signs with HS256; drop --alg or use --key".into(),
                ));
            }
            SigningKey::hs256(secret.as_bytes())
                .map_err(|e| CliError::Usage(format!("invalid --hs256-secret: {e}")))
        }
        (None, Some(path)) => {
            if alg == Some(Algorithm::HS256) {
                return Err(CliError::Usage(
                    "HS256 needs --hs256-secret, not --key".into(),
                ));
            }
            let pem = std::fs::read(path).map_err(|e| {
                CliError::Runtime(format!("cannot read the key file {}: {e}", path.display()))
            })?;
            SigningKey::from_pem(&pem, alg)
                .map_err(|e| CliError::Usage(format!("invalid key file {}: {e}", path.display())))
        }
    }
}
