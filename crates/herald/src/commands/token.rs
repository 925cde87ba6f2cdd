//! `herald token`: mints an RFC 9068 access token for a Mercure hub (development and tests).
//!
//! The token carries one Mercure authorization detail for `--publish` matchers and one for
//! `--subscribe` matchers. With `--legacy`, it mints a pre-draft-08 token instead: a plain JWT
//! whose `mercure` claim lists the `--publish` and `--subscribe` selectors and the `--payload`
//! (options that only make sense for access tokens, such as `--issuer`, are refused).
//! Usage errors (a bad ttl, algorithm, key or payload, a missing or doubled key option)
//! exit with 2; failures to read the key file or to sign exit with 1.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use herald_token::{
    Action, Algorithm, AuthorizationDetail, LegacyMintRequest, MintRequest, SigningKey,
    TopicMatcher, WILDCARD,
};

use crate::error::CliError;

/// Arguments of `herald token`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Mint a pre-draft-08 ("legacy") token: a plain JWT whose `mercure` claim carries the
    /// `--publish` and `--subscribe` selectors and the `--payload`.
    #[arg(long)]
    legacy: bool,
    /// The issuer identifier (`iss`) the hub trusts the key under.
    #[arg(
        long,
        value_name = "ISSUER",
        required_unless_present = "legacy",
        conflicts_with = "legacy"
    )]
    issuer: Option<String>,
    /// The hub's resource identifier (`aud`); repeat for several hubs.
    #[arg(
        long,
        value_name = "RESOURCE",
        required_unless_present = "legacy",
        conflicts_with = "legacy"
    )]
    audience: Vec<String>,
    /// The subject (`sub`); a random `urn:uuid:` by default (none with `--legacy`).
    #[arg(long, value_name = "SUBJECT")]
    subject: Option<String>,
    /// The client identifier (`client_id`); the issuer by default.
    #[arg(long, value_name = "CLIENT_ID", conflicts_with = "legacy")]
    client_id: Option<String>,
    /// Topic matchers the token may publish to (`*` is the wildcard); with `--legacy`, the
    /// topic selectors of `mercure.publish`.
    #[arg(long, value_name = "MATCHER", num_args = 1..)]
    publish: Vec<String>,
    /// Topic matchers the token may receive private updates for (`*` is the wildcard); with
    /// `--legacy`, the topic selectors of `mercure.subscribe`.
    #[arg(long, value_name = "MATCHER", num_args = 1..)]
    subscribe: Vec<String>,
    /// Write the matchers as `urlpattern` matchers instead of `exact` ones.
    #[arg(long, conflicts_with = "legacy")]
    urlpattern: bool,
    /// With `--legacy`: the JSON value of `mercure.payload`.
    #[arg(long, value_name = "JSON")]
    payload: Option<String>,
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
    for warning in empty_matcher_warnings(&args) {
        let _ = writeln!(std::io::stderr(), "herald: warning: {warning}");
    }
    crate::commands::print_line(&token)
}

fn mint_token(args: &Args) -> Result<String, CliError> {
    // Checked here rather than with clap's `requires`, which a flag's default value satisfies.
    if args.payload.is_some() && !args.legacy {
        return Err(CliError::Usage(
            "--payload is only for legacy tokens: add --legacy".into(),
        ));
    }
    // One clock reading for the ttl check and the token, so that the `exp`
    // checked is the `exp` written.
    let now = SystemTime::now();
    let ttl = parse_ttl(&args.ttl, now)?;
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
    check_matchers(args)?;

    if args.legacy {
        return mint_legacy_token(args, ttl, &key, now);
    }
    // clap requires both without --legacy.
    let (Some(issuer), Some(audience)) = (&args.issuer, args.audience.first()) else {
        return Err(CliError::Usage(
            "--issuer and --audience are required (or pass --legacy)".into(),
        ));
    };
    let mut request = MintRequest::new(issuer, audience.clone()).with_ttl(ttl);
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
    herald_token::mint_at(&request, &key, now).map_err(|e| match e {
        herald_token::Error::Mint(_) => CliError::Usage(e.to_string()),
        e => CliError::Runtime(e.to_string()),
    })
}

fn mint_legacy_token(
    args: &Args,
    ttl: Duration,
    key: &SigningKey,
    now: SystemTime,
) -> Result<String, CliError> {
    let payload = args
        .payload
        .as_deref()
        .map(|text| {
            serde_json::from_str(text)
                .map_err(|e| CliError::Usage(format!("invalid --payload: not JSON: {e}")))
        })
        .transpose()?;
    let request = LegacyMintRequest {
        publish: args.publish.clone(),
        subscribe: args.subscribe.clone(),
        payload,
        subject: args.subject.clone(),
        ttl: Some(ttl),
    };
    herald_token::mint_legacy_at(&request, key, now).map_err(|e| match e {
        herald_token::Error::Mint(_) => CliError::Usage(e.to_string()),
        e => CliError::Runtime(e.to_string()),
    })
}

/// Refuses a matcher that hubs would refuse the token for, with the hub's own parser: a hub
/// parses a token's matchers as it parses a subscription's, and one it cannot parse (a URL
/// pattern that does not compile, a control character) makes it refuse the whole token
/// with 401. Limits each hub sets itself (the longest matcher) are left to the hub.
fn check_matchers(args: &Args) -> Result<(), CliError> {
    let matcher_type = if args.legacy {
        herald_hub::MatcherType::Selector
    } else if args.urlpattern {
        herald_hub::MatcherType::UrlPattern
    } else {
        herald_hub::MatcherType::Exact
    };
    // A hub resolves relative URL patterns against its own URL, which is the audience.
    let mut bases: Vec<url::Url> = args
        .audience
        .iter()
        .filter_map(|audience| url::Url::parse(audience).ok())
        .collect();
    if bases.is_empty() {
        bases.push(url::Url::parse("http://localhost/").expect("a URL"));
    }
    let several = bases.len() > 1;
    let flags = [
        ("--publish", &args.publish),
        ("--subscribe", &args.subscribe),
    ];
    for base in bases {
        let compiler = herald_hub::Matchers::new(
            base.clone(),
            herald_hub::MatcherLimits {
                max_length: usize::MAX,
                max_pattern_memory: usize::MAX,
            },
        );
        for (flag, patterns) in flags {
            for pattern in patterns {
                compiler.parse(flag, matcher_type, pattern).map_err(|e| {
                    CliError::Usage(if several {
                        format!("{e} (for the audience {base})")
                    } else {
                        e.to_string()
                    })
                })?;
            }
        }
    }
    Ok(())
}

/// Hubs accept an empty matcher, so one is minted as asked; but it is far more likely an
/// unset shell variable than a grant anyone wants, so it is not minted silently.
fn empty_matcher_warnings(args: &Args) -> Vec<String> {
    let what = if args.urlpattern {
        "an empty URL pattern: hubs accept it, but it matches only the hub URL cut after \
         its last `/`"
    } else {
        "an empty matcher: hubs accept it, but it matches no topic (topics are never empty)"
    };
    [
        ("--publish", &args.publish),
        ("--subscribe", &args.subscribe),
    ]
    .into_iter()
    .filter(|(_, patterns)| patterns.iter().any(String::is_empty))
    .map(|(flag, _)| format!("{flag} '' is {what}"))
    .collect()
}

fn matcher(pattern: &str, urlpattern: bool) -> TopicMatcher {
    if urlpattern && pattern != WILDCARD {
        TopicMatcher::urlpattern(pattern)
    } else {
        TopicMatcher::exact(pattern)
    }
}

/// The first `exp` a hub refuses: herald-token's verifier reads a NumericDate
/// of 10^15 seconds or more (some 31 million years from now) as invalid.
const MAX_NUMERIC_DATE: u64 = 1_000_000_000_000_000;

/// A lifetime of at least one second whose expiry, counted from `now`, is a
/// NumericDate a hub accepts.
fn parse_ttl(text: &str, now: SystemTime) -> Result<Duration, CliError> {
    let invalid = |why: String| CliError::Usage(format!("invalid --ttl {text:?}: {why}"));
    let ttl = humantime::parse_duration(text).map_err(|e| invalid(e.to_string()))?;
    if ttl < Duration::from_secs(1) {
        return Err(invalid("the lifetime must be at least one second".into()));
    }
    // A clock before 1970 is left for the minting to report.
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let fits = now
        .checked_add(ttl.as_secs())
        .is_some_and(|exp| exp < MAX_NUMERIC_DATE);
    if !fits {
        return Err(invalid(format!(
            "too long: the token's exp would be 10^15 seconds after 1970 or later, \
             which hubs refuse; the longest lifetime is {}s",
            MAX_NUMERIC_DATE.saturating_sub(now).saturating_sub(1)
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
            SigningKey::from_pem(&pem, alg).map_err(|e| match e {
                herald_token::Error::SeveralKeys { found } => CliError::Usage(format!(
                    "invalid key file {}: it holds {found}; --key needs one",
                    path.display()
                )),
                e => CliError::Usage(format!("invalid key file {}: {e}", path.display())),
            })
        }
    }
}
