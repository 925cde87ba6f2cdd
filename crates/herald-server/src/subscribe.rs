//! The subscription endpoint: `GET` or `QUERY` on the hub URL.

use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use herald_hub::{Entry, MAX_SUBSCRIPTION_PATTERN_BYTES, MatcherType, Resume, Subscription};
use herald_sse::encode::KEEP_ALIVE;
use tokio::time::{Instant, Sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::auth::Client;
use crate::error::{BearerError, ServerError};
use crate::limits::Admission;
use crate::metrics::Metrics;
use crate::stream_conn::ChunkedWire;
use crate::{Herald, form};

/// The parsed subscription request.
struct Request {
    /// Each matcher with the type its parameter named.
    matchers: Vec<(MatcherType, herald_hub::Matcher)>,
    /// What the matchers' compiled URL patterns take, each counted whole.
    pattern_bytes: usize,
    last_event_id: Option<String>,
    /// Whether a pre-draft-08 `topic=` selector was used.
    legacy_topics: bool,
    /// Whether the id came from the pre-draft-08 `lastEventID` parameter.
    legacy_last_event_id: bool,
}

/// Who a subscription request comes from, as the edge knows it before the
/// request is parsed.
pub(crate) struct Caller {
    /// The client's address (through trusted proxies), for the per-address
    /// limits.
    pub(crate) peer: Option<IpAddr>,
    /// The socket of a hand-served stream, which writes the events itself.
    pub(crate) wire: Option<Arc<ChunkedWire>>,
    /// The client, authenticated by the edge before it waited for a body.
    pub(crate) client: Client,
}

pub(crate) async fn subscribe(
    herald: &Herald,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
    caller: Caller,
) -> Result<Response, ServerError> {
    let Caller { peer, wire, client } = caller;
    // Whether there is room for the client before any URL pattern is
    // compiled: a compile costs up to tens of milliseconds, which a client
    // the hub would refuse must not get to spend.
    let mut admission = herald
        .connections()
        .admit(peer, client.subject.as_deref())?;
    let request = if names_a_url_pattern(query, &body) {
        // A URL pattern's groups take up to milliseconds each to compile:
        // compiled off the runtime's workers, so that a request with many of
        // them does not hold up other connections, and a few at a time, so
        // that many such requests take neither every core nor a thread each.
        let _permit = COMPILING
            .acquire()
            .await
            .map_err(|_| ServerError::Unavailable("the hub is shutting down".into()))?;
        let (herald, method, headers) = (herald.clone(), method.clone(), headers.clone());
        let query = query.map(str::to_owned);
        let body = body.clone();
        tokio::task::spawn_blocking(move || {
            parse(&herald, &method, &headers, query.as_deref(), &body)
        })
        .await
        .map_err(|error| match error.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(_) => ServerError::Unavailable("the hub is shutting down".into()),
        })??
    } else {
        parse(herald, method, headers, query, &body)?
    };
    admission.hold_patterns(request.pattern_bytes)?;
    if *method == Method::HEAD {
        // The head of the same answer, checked as a GET is (connection
        // limits included), without subscribing: no stream, no subscription
        // event. A body of unknown length, as a GET's, so that no
        // `Content-Length: 0` is announced.
        drop(admission);
        return Response::builder()
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-accel-buffering", "no")
            .body(Body::from_stream(futures_util::stream::empty::<
                Result<Bytes, std::convert::Infallible>,
            >()))
            .map_err(|e| ServerError::BadRequest(format!("cannot build the response: {e}")));
    }
    if client.legacy {
        herald.metrics().legacy_request("token");
    }
    if request.legacy_topics {
        herald.metrics().legacy_request("topic");
    }
    if request.legacy_last_event_id {
        herald.metrics().legacy_request("last_event_id");
    }
    let resume = Resume::from_last_event_id(request.last_event_id.as_deref());
    let subscription = herald
        .hub()
        .subscribe_typed(request.matchers, client.grants, resume)
        .await?;
    if let Some(wire) = &wire {
        wire.set_metrics(Arc::clone(herald.metrics()));
        subscription.attach_wire(Arc::clone(wire) as Arc<dyn herald_hub::Wire>);
    }

    let mut response = Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no");
    if let Some(after) = subscription.resumed_after()
        && let Ok(value) = HeaderValue::from_str(after)
    {
        // The pre-draft-08 name of the same header, for older clients.
        if herald.settings().compatibility.is_some() {
            response = response.header("last-event-id", value.clone());
        }
        response = response.header("mercure-last-event-id", value);
    }
    let deadline = close_at(client.expires_at, herald.settings().max_connection_lifetime);
    let stream = EventStream {
        subscription,
        heartbeat: herald.settings().heartbeat,
        timer: Box::pin(sleep_until(
            (Instant::now() + herald.settings().heartbeat).min(deadline),
        )),
        deadline,
        shutdown: herald.shutdown_token().clone(),
        metrics: Arc::clone(herald.metrics()),
        wire,
        opened: false,
        closing: false,
        ended: false,
        span: tracing::Span::current(),
        _admission: admission,
    };
    tracing::info!(
        subscriber = stream.subscription.subscriber_id(),
        authenticated = client.subject.is_some(),
        resumed = stream.subscription.resumed_after().is_some(),
        "subscriber connected"
    );
    response
        .body(Body::from_stream(stream.into_stream()))
        .map_err(|e| ServerError::BadRequest(format!("cannot build the response: {e}")))
}

/// What the 401 of a hub without anonymous subscribers says is missing.
pub(crate) const TOKEN_NEEDED: &str = "this hub requires an access token to subscribe";

/// How many subscription requests compile their URL patterns at once, in the
/// whole process: twice the cores of the machines herald is sized for.
static COMPILING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(4);

/// Whether a subscription request may name `match_urlpattern`: it says
/// `urlpattern`, or a parameter name is percent-encoded (or holds a `+`), which
/// could spell it (`match_%75rlpattern`) without saying it. Erring towards
/// yes costs only a trip off the workers.
fn names_a_url_pattern(query: Option<&str>, body: &[u8]) -> bool {
    let names = |bytes: &[u8]| {
        bytes
            .windows(b"urlpattern".len())
            .any(|w| w.eq_ignore_ascii_case(b"urlpattern"))
            || bytes.split(|&b| b == b'&').any(|pair| {
                let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
                name.contains(&b'%') || name.contains(&b'+')
            })
    };
    query.is_some_and(|query| names(query.as_bytes())) || names(body)
}

fn parse(
    herald: &Herald,
    method: &Method,
    headers: &HeaderMap,
    query: Option<&str>,
    body: &[u8],
) -> Result<Request, ServerError> {
    let mut pairs = form::parse(query.unwrap_or("").as_bytes()).map_err(ServerError::BadRequest)?;
    let query_len = pairs.len();
    if *method != Method::GET && *method != Method::HEAD && !body.is_empty() {
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !is_form(content_type) {
            return Err(ServerError::UnsupportedMediaType(format!(
                "a subscription body must be application/x-www-form-urlencoded, not `{content_type}`"
            )));
        }
        pairs.extend(form::parse(body).map_err(ServerError::BadRequest)?);
    }
    let legacy = herald.settings().compatibility.is_some();
    // `last_event_id` is single-valued: the query component wins over the
    // body, and the draft-08 name over the pre-draft-08 `lastEventID`.
    let (from_query, from_body) = pairs.split_at(query_len);
    let names: &[&str] = if legacy {
        &["last_event_id", "lastEventID"]
    } else {
        &["last_event_id"]
    };
    // Given twice in one place, which one counts would be a guess: refused.
    for name in names {
        for part in [from_query, from_body] {
            if part.iter().filter(|(n, _)| n == name).count() > 1 {
                return Err(ServerError::BadRequest(format!(
                    "the `{name}` parameter is given more than once; send it once"
                )));
            }
        }
    }
    let last_event_id = names
        .iter()
        .flat_map(|name| [(from_query, *name), (from_body, *name)])
        .find_map(|(part, name)| part.iter().find(|(n, _)| n == name))
        .map(|(n, v)| (n == "lastEventID", v.clone()));
    let (legacy_last_event_id, last_event_id) = match last_event_id {
        Some((legacy, id)) => (legacy, Some(id)),
        None => (false, None),
    };
    let mut matchers = Vec::new();
    let mut pattern_bytes = 0;
    for (name, value) in &pairs {
        if name == "access_token" || (!legacy && name == "authorization") {
            return Err(ServerError::Bearer {
                error: BearerError::InvalidRequest,
                reason: "token_in_url",
                detail: "access tokens are not accepted in the URL or body; use the Authorization header or the cookie".into(),
            });
        }
        let matcher_type = match MatcherType::from_param(name)? {
            Some(matcher_type) => matcher_type,
            None if legacy && name == "topic" => MatcherType::Selector,
            None => continue,
        };
        if matchers.len() == herald.settings().max_matchers {
            return Err(ServerError::BadRequest(format!(
                "a subscription may have at most {} topic matchers",
                herald.settings().max_matchers
            )));
        }
        let matcher = herald.hub().matcher(name, matcher_type, value)?;
        pattern_bytes += matcher.compiled_bytes();
        if pattern_bytes > MAX_SUBSCRIPTION_PATTERN_BYTES {
            return Err(ServerError::BadRequest(format!(
                "the subscription's URL patterns compile to more than {} MiB together, at \
                 `{name}` `{value}`: use fewer patterns, or fewer repeated groups in them",
                MAX_SUBSCRIPTION_PATTERN_BYTES >> 20
            )));
        }
        matchers.push((matcher_type, matcher));
    }
    if matchers.is_empty() {
        let hint = if legacy {
            "a subscription needs at least one `match`, `match_urlpattern` or `topic` parameter"
        } else if pairs.iter().any(|(n, _)| n == "topic") {
            "a subscription needs at least one `match` or `match_urlpattern` parameter; \
             `topic` belongs to the pre-draft-08 protocol, which this hub does not speak \
             (see `[compatibility]` in docs/configuration.md)"
        } else {
            "a subscription needs at least one `match` or `match_urlpattern` parameter"
        };
        return Err(ServerError::BadRequest(hint.into()));
    }
    // The Last-Event-ID header wins over the parameter.
    // Browsers send the id as they received it, UTF-8 (ids may be IRIs).
    let mut header_ids = headers.get_all("last-event-id").iter();
    let header_id = header_ids.next();
    if header_ids.next().is_some() {
        return Err(ServerError::BadRequest(
            "the request carries several Last-Event-ID headers; send one".into(),
        ));
    }
    let header_id = match header_id {
        Some(value) => Some(
            std::str::from_utf8(value.as_bytes())
                .map_err(|_| {
                    ServerError::BadRequest("the Last-Event-ID header is not valid UTF-8".into())
                })?
                .to_owned(),
        ),
        None => None,
    };
    // An empty id names no update (an empty `id:` field resets a browser's
    // last event ID): it asks for live updates only, and the cursor they
    // start after, which the spec requires whenever the request has one.
    let (header_id, empty_header) = match header_id {
        Some(id) if id.is_empty() => (None, Some(id)),
        id => (id, None),
    };
    let legacy_topics = matchers.iter().any(|(t, _)| *t == MatcherType::Selector);
    Ok(Request {
        matchers,
        pattern_bytes,
        legacy_last_event_id: header_id.is_none()
            && legacy_last_event_id
            && last_event_id.as_ref().is_some_and(|id| !id.is_empty()),
        last_event_id: header_id.or(last_event_id).or(empty_header),
        legacy_topics,
    })
}

pub(crate) fn is_form(content_type: &str) -> bool {
    content_type.split(';').next().is_some_and(|t| {
        t.trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// When the connection must close: at the token's expiry, and no later than
/// the maximum lifetime.
fn close_at(expires_at: Option<SystemTime>, max_lifetime: Option<Duration>) -> Instant {
    // Beyond a century a stream is as good as unbounded, and an `Instant`
    // that far (a token's `exp` can be any NumericDate) would overflow.
    const FAR: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    let by_token = expires_at.map(|exp| {
        exp.duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    });
    let wait = [by_token, max_lifetime]
        .into_iter()
        .flatten()
        .min()
        .map_or(FAR, |wait| wait.min(FAR));
    Instant::now() + wait
}

/// The `retry:` sent before the hub closes a stream to shut down: clients come
/// back to the next hub spread between 0.5 s and 5 s instead of all at once.
fn reconnect_hint(subscriber: u64) -> Bytes {
    let spread = subscriber.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33;
    let millis = 500 + spread % 4500;
    let mut frame = bytes::BytesMut::with_capacity(24);
    herald_sse::encode::write_retry(&mut frame, millis);
    herald_sse::encode::write_end(&mut frame);
    frame.freeze()
}

/// The most bytes of ready entries coalesced into one body chunk (one write).
const MAX_CHUNK: usize = 64 * 1024;

/// Writes a subscription to the wire: entries, keep-alives, and the close.
struct EventStream {
    subscription: Subscription,
    heartbeat: Duration,
    /// One timer for both the next keep-alive and the deadline (whichever
    /// comes first): a timer is a heap allocation per subscriber.
    timer: Pin<Box<Sleep>>,
    /// When the stream must close (token expiry or maximum lifetime).
    deadline: Instant,
    shutdown: CancellationToken,
    metrics: Arc<Metrics>,
    /// The socket the hub writes entries to directly, if it does: those
    /// writes postpone the keep-alive too.
    wire: Option<Arc<ChunkedWire>>,
    opened: bool,
    /// The final `retry:` hint was sent; the next poll ends the stream.
    closing: bool,
    /// Whether the hub ended the stream (and logged why).
    ended: bool,
    /// The request span, so the close is logged with the request id.
    span: tracing::Span,
    _admission: Admission,
}

impl EventStream {
    /// Sets the timer to the next keep-alive, or the deadline if sooner.
    fn rearm(&mut self) {
        let at = (Instant::now() + self.heartbeat).min(self.deadline);
        self.timer.as_mut().reset(at);
    }

    /// Logs why the hub ends this stream.
    fn end(&mut self, reason: &'static str) {
        self.ended = true;
        let _entered = self.span.enter();
        tracing::info!(
            subscriber = self.subscription.subscriber_id(),
            reason,
            "subscriber disconnected"
        );
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if !self.ended {
            let timed_out = self.wire.as_ref().is_some_and(|wire| wire.timed_out());
            if timed_out {
                self.metrics.write_timed_out();
            }
            let _entered = self.span.enter();
            tracing::info!(
                subscriber = self.subscription.subscriber_id(),
                reason = if timed_out {
                    "write timeout: the client stopped reading or vanished"
                } else {
                    "client disconnected"
                },
                "subscriber disconnected"
            );
        }
    }
}

impl EventStream {
    /// `first`'s frame, followed by the frames of every entry already ready
    /// (a replay batch, a queued backlog) up to [`MAX_CHUNK`] bytes: one body
    /// chunk and one write for many events. A lone entry's shared frame is
    /// sent as is, without a copy.
    fn coalesce(&mut self, first: &Arc<Entry>) -> Bytes {
        let Some(second) = self.subscription.next_ready() else {
            return first.frame().clone();
        };
        // Sized for a few frames, not for the limit: with thousands of
        // subscribers catching up at once, a 64 KiB buffer each is gigabytes.
        let pair = first.frame().len() + second.frame().len();
        let mut chunk = BytesMut::with_capacity((pair * 4).min(MAX_CHUNK));
        chunk.extend_from_slice(first.frame());
        chunk.extend_from_slice(second.frame());
        while chunk.len() < MAX_CHUNK {
            let Some(entry) = self.subscription.next_ready() else {
                break;
            };
            chunk.extend_from_slice(entry.frame());
        }
        chunk.freeze()
    }

    fn into_stream(self) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures_util::stream::unfold(self, |mut s| async move {
            if s.closing {
                return None;
            }
            if !s.opened {
                // A first comment flushes the headers through buffering proxies
                // and lets clients see the stream is open.
                s.opened = true;
                s.metrics.written_comment(KEEP_ALIVE.len());
                return Some((Ok(Bytes::from_static(KEEP_ALIVE)), s));
            }
            loop {
                tokio::select! {
                    biased;
                    () = s.shutdown.cancelled() => {
                        s.closing = true;
                        s.end("hub shutting down");
                        let hint = reconnect_hint(s.subscription.subscriber_id());
                        s.metrics.written_comment(hint.len());
                        return Some((Ok(hint), s));
                    }

                    // Before entries, so a busy stream still closes at its deadline.
                    () = &mut s.timer => {
                        let now = Instant::now();
                        if now >= s.deadline {
                            s.end("token expired or maximum lifetime reached");
                            return None;
                        }
                        let next = s
                            .wire
                            .as_ref()
                            .and_then(|wire| wire.last_write())
                            .map(|at| at + s.heartbeat)
                            .filter(|next| *next > now);
                        if let Some(next) = next {
                            // The hub wrote an entry since: no keep-alive yet.
                            s.timer.as_mut().reset(next.min(s.deadline));
                            continue;
                        }
                        s.rearm();
                        s.metrics.written_comment(KEEP_ALIVE.len());
                        return Some((Ok(Bytes::from_static(KEEP_ALIVE)), s));
                    }
                    next = s.subscription.next() => match next {
                        Ok(Some(entry)) => {
                            s.rearm();
                            let live = (!s.subscription.is_replayed(&entry))
                                .then(|| entry.published_at());
                            let chunk = s.coalesce(&entry);
                            s.metrics.written(chunk.len(), live);
                            return Some((Ok(chunk), s));
                        }
                        Ok(None) => {
                            let reason = if s.subscription.was_too_slow() {
                                "too slow: its queue was full"
                            } else {
                                "ended by the hub"
                            };
                            s.end(reason);
                            return None;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "replay failed; closing the subscription");
                            s.end("replay failed");
                            return None;
                        }
                    },
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::names_a_url_pattern;

    #[test]
    fn a_url_pattern_is_found_however_its_parameter_is_spelt() {
        for query in [
            "match_urlpattern=https://example.com/:id",
            "MATCH_URLPATTERN=x",
            "match_%75rlpattern=https://example.com/:id",
            "a=1&match%5Furlpattern=x",
            "match+urlpattern=x",
        ] {
            assert!(names_a_url_pattern(Some(query), b""), "{query}");
            assert!(names_a_url_pattern(None, query.as_bytes()), "{query}");
        }
        for query in [
            "match=https://example.com/%75",
            "match=a+b&last_event_id=%41",
        ] {
            assert!(!names_a_url_pattern(Some(query), b""), "{query}");
        }
    }
}
