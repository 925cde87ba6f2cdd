//! The hub: validates and publishes updates, and opens subscriptions.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use url::Url;

use crate::ids::{IdGenerator, IdScheme};
use crate::log::{Dispatch, Log, MemoryLog};
use crate::presence::Presence;
use crate::registry::{Registry, RegistryStats};
use crate::subscription::{Resume, Subscription};
use crate::{
    Entry, Grants, HubError, Matcher, MatcherLimits, MatcherType, Matchers, Namespace, Update,
    UpdateLimits,
};

/// How long closing the log waits for pending subscription events.
const PRESENCE_DRAIN: Duration = Duration::from_secs(10);

/// Builds a [`Hub`].
#[derive(Clone)]
pub struct HubBuilder {
    hub_url: Url,
    log: Option<Arc<dyn Log>>,
    shards: usize,
    queue_capacity: usize,
    queue_bytes: u64,
    publish_pace: usize,
    memory_log_capacity: usize,
    memory_log_bytes: u64,
    update_limits: UpdateLimits,
    matcher_limits: MatcherLimits,
    id_scheme: IdScheme,
    subscriptions: bool,
    max_pending_events: usize,
    max_pending_bytes: u64,
}

impl std::fmt::Debug for HubBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubBuilder")
            .field("hub_url", &self.hub_url.as_str())
            .field("shards", &self.shards)
            .field("queue_capacity", &self.queue_capacity)
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl HubBuilder {
    /// Most subscription events queued for the log at once, with active
    /// subscriptions on (default [`crate::DEFAULT_MAX_PENDING_EVENTS`]): a
    /// subscription whose `active` events would go past it is refused with
    /// [`HubError::Overloaded`]. `active: false` events are never refused.
    pub fn max_pending_events(mut self, events: usize) -> Self {
        self.max_pending_events = events;
        self
    }

    /// Most bytes of subscription events queued for the log at once
    /// (default [`crate::DEFAULT_MAX_PENDING_BYTES`]), a pending event
    /// weighing about its subscription's matcher, topic and payload: the
    /// bound that holds with long matchers. Past it, as past
    /// [`Self::max_pending_events`], a subscription is refused.
    pub fn max_pending_bytes(mut self, bytes: u64) -> Self {
        self.max_pending_bytes = bytes;
        self
    }

    /// Turns on active subscriptions: the index behind the subscription API
    /// and the subscription events (default off).
    pub fn subscriptions(mut self, enabled: bool) -> Self {
        self.subscriptions = enabled;
        self
    }

    /// Uses this log instead of the default in-memory one.
    pub fn log(mut self, log: Arc<dyn Log>) -> Self {
        self.log = Some(log);
        self
    }

    /// How many entries the default in-memory log keeps (default 100,000).
    pub fn memory_log_capacity(mut self, capacity: usize) -> Self {
        self.memory_log_capacity = capacity;
        self
    }

    /// How many bytes of frames the default in-memory log keeps (default
    /// [`DEFAULT_MEMORY_LOG_BYTES`](crate::DEFAULT_MEMORY_LOG_BYTES)).
    pub fn memory_log_bytes(mut self, bytes: u64) -> Self {
        self.memory_log_bytes = bytes;
        self
    }

    /// Registry shards (default: twice the available parallelism).
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = shards;
        self
    }

    /// How many updates may wait for one subscriber before it is disconnected
    /// as too slow (default 1024).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// How many bytes of updates may wait for one subscriber before it is
    /// disconnected as too slow (default
    /// [`DEFAULT_QUEUE_BYTES`](crate::DEFAULT_QUEUE_BYTES), 256 MiB); the
    /// newest update always fits.
    pub fn queue_bytes(mut self, bytes: u64) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Paces publishers to the fan-out (default 40; 0: off). While the hub
    /// is still writing earlier updates to a group of subscribers, the group
    /// takes `per_pass` updates per pass over its subscribers, spread over
    /// the pass; a publish beyond that is answered once the hub has written
    /// the group's next share. Off, every publish is answered as soon as
    /// its update is queued, and a publisher faster than the fan-out makes
    /// every update wait longer in the hub (docs/benchmarks.md, changes 15
    /// and 22).
    pub fn publish_pace(mut self, per_pass: usize) -> Self {
        self.publish_pace = per_pass;
        self
    }

    /// Limits on published updates.
    pub fn update_limits(mut self, limits: UpdateLimits) -> Self {
        self.update_limits = limits;
        self
    }

    /// Limits on matchers.
    pub fn matcher_limits(mut self, limits: MatcherLimits) -> Self {
        self.matcher_limits = limits;
        self
    }

    /// How generated ids are made.
    pub fn id_scheme(mut self, scheme: IdScheme) -> Self {
        self.id_scheme = scheme;
        self
    }

    /// Builds the hub.
    pub fn build(self) -> Hub {
        let registry = Registry::with_bounds(
            self.shards,
            self.queue_capacity,
            self.queue_bytes,
            self.publish_pace,
        );
        let log = self.log.unwrap_or_else(|| {
            Arc::new(MemoryLog::new(self.memory_log_capacity).with_max_bytes(self.memory_log_bytes))
        });
        registry.start_after(log.head());
        log.attach(Arc::clone(&registry) as Arc<dyn Dispatch>);
        let namespace = Namespace::new(self.hub_url.clone());
        let ids = Arc::new(IdGenerator::new(self.id_scheme));
        let presence = self.subscriptions.then(|| {
            Presence::new(
                namespace.path(),
                self.shards,
                Arc::clone(&log),
                Arc::clone(&ids),
                self.max_pending_events,
                self.max_pending_bytes,
            )
        });
        Hub {
            inner: Arc::new(Inner {
                presence,
                namespace,
                matchers: Matchers::new(self.hub_url, self.matcher_limits),
                registry,
                log,
                update_limits: self.update_limits,
                ids,
            }),
        }
    }
}

/// A Mercure hub: cheap to clone, all clones share one state.
///
/// ```
/// # tokio_test();
/// # fn tokio_test() { tokio::runtime::Runtime::new().unwrap().block_on(async {
/// use herald_hub::{Grants, Hub, MatcherType, Resume, Update};
///
/// let hub = Hub::builder("https://example.com/.well-known/mercure".parse().unwrap()).build();
/// let matcher = hub.matcher("match", MatcherType::Exact, "https://example.com/books/1").unwrap();
/// let mut subscription = hub.subscribe(vec![matcher], Grants::none(), Resume::Live).await.unwrap();
///
/// let entry = hub.publish(Update::new("https://example.com/books/1", "{\"title\":\"Dune\"}")).await.unwrap();
/// let received = subscription.next().await.unwrap().unwrap();
/// assert_eq!(received.id(), entry.id());
/// # }); }
/// ```
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

struct Inner {
    presence: Option<Arc<Presence>>,
    namespace: Namespace,
    matchers: Matchers,
    registry: Arc<Registry>,
    log: Arc<dyn Log>,
    update_limits: UpdateLimits,
    ids: Arc<IdGenerator>,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("url", &self.url().as_str())
            .field("registry", &self.inner.registry)
            .finish()
    }
}

impl Hub {
    /// Starts building a hub whose URL (and resource identifier) is `hub_url`.
    pub fn builder(hub_url: Url) -> HubBuilder {
        let parallelism = std::thread::available_parallelism().map_or(4, usize::from);
        HubBuilder {
            hub_url,
            log: None,
            shards: parallelism * 2,
            queue_capacity: 1024,
            queue_bytes: crate::registry::DEFAULT_QUEUE_BYTES,
            publish_pace: 40,
            memory_log_capacity: 100_000,
            memory_log_bytes: crate::DEFAULT_MEMORY_LOG_BYTES,
            update_limits: UpdateLimits::default(),
            matcher_limits: MatcherLimits::default(),
            id_scheme: IdScheme::default(),
            subscriptions: false,
            max_pending_events: crate::DEFAULT_MAX_PENDING_EVENTS,
            max_pending_bytes: crate::DEFAULT_MAX_PENDING_BYTES,
        }
    }

    /// The hub URL.
    pub fn url(&self) -> &Url {
        self.inner.namespace.hub_url()
    }

    /// The reserved namespace of this hub.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.namespace
    }

    /// The bytes the compiled expressions of URL patterns take in this
    /// process (see [`Matchers::pattern_bytes`]).
    pub fn pattern_bytes(&self) -> usize {
        self.inner.matchers.pattern_bytes()
    }

    /// Parses a matcher for this hub (relative patterns resolve on the hub URL).
    ///
    /// With active subscriptions on, a matcher that is exactly `.` or `..` is
    /// refused: it would be a dot segment of its subscription's topic, which
    /// URL parsing resolves away, so the topic would name another resource.
    pub fn matcher(
        &self,
        param: &str,
        matcher_type: MatcherType,
        value: &str,
    ) -> Result<Matcher, HubError> {
        if self.inner.presence.is_some() && (value == "." || value == "..") {
            return Err(HubError::InvalidMatcher {
                param: param.to_owned(),
                value: value.to_owned(),
                matcher_type: matcher_type.name(),
                reason: "a dot segment cannot name an active subscription: URL parsing \
                         would resolve it away in the subscription's topic"
                    .into(),
            });
        }
        self.inner.matchers.parse(param, matcher_type, value)
    }

    /// The limits applied to published updates.
    pub fn update_limits(&self) -> &UpdateLimits {
        &self.inner.update_limits
    }

    /// The registry's counters.
    pub fn stats(&self) -> &RegistryStats {
        self.inner.registry.stats()
    }

    /// What the log holds.
    pub fn log_stats(&self) -> crate::LogStats {
        self.inner.log.stats()
    }

    /// Whether the log can take appends now.
    pub async fn check_ready(&self) -> Result<(), HubError> {
        self.inner.log.check_ready().await
    }

    /// Whether the log can still work, or only a restart would bring it back.
    pub fn check_alive(&self) -> Result<(), HubError> {
        self.inner.log.check_alive()
    }

    /// Closes the log at shutdown (see [`Log::close`]): blocks until what was
    /// acknowledged is durable, and says what went wrong if it could not be.
    ///
    /// Call it off the runtime (`spawn_blocking`) once serving has ended.
    /// With active subscriptions on, it first ends the subscriptions of any
    /// connection still open, then waits, up to 10 s, for every queued
    /// subscription event to reach the log, which the runtime appends.
    pub fn close_log(&self) -> Result<(), HubError> {
        if let Some(presence) = &self.inner.presence {
            presence.end_all();
            if !presence.wait_appended(PRESENCE_DRAIN) {
                tracing::warn!(
                    "subscription events were still being appended after {PRESENCE_DRAIN:?}; closing the log without them"
                );
            }
        }
        self.inner.log.close()
    }

    /// Validates and publishes an update. Resolves once it is committed to the
    /// log and queued for every matching subscriber; never waits on a subscriber.
    ///
    /// Authorization is the caller's business: the HTTP edge checks the
    /// publisher's token, an embedding application trusts its own code.
    pub async fn publish(&self, update: Update) -> Result<Arc<Entry>, HubError> {
        update.validate(&self.inner.namespace, &self.inner.update_limits)?;
        self.append(update).await
    }

    /// Publishes an update the hub generates itself, in its reserved namespace.
    pub async fn publish_internal(&self, update: Update) -> Result<Arc<Entry>, HubError> {
        update.validate_fields(&self.inner.update_limits)?;
        self.append(update).await
    }

    async fn append(&self, mut update: Update) -> Result<Arc<Entry>, HubError> {
        let id = match update.id.take() {
            Some(id) => id,
            None => self.inner.ids.generate(&*self.inner.log).await?,
        };
        let entry = Entry::encode(update, id, SystemTime::now())?;
        let entry = self.inner.log.append(entry).await?;
        self.inner.registry.paced(entry.position()).await;
        Ok(entry)
    }

    /// Subscribes with `matchers`, reading private updates as `grants` allow,
    /// replaying the log first when `resume` asks for it.
    ///
    /// With active subscriptions on, refused with [`HubError::Overloaded`]
    /// while the subscription events already queued leave no room for this
    /// subscription's (see [`HubBuilder::max_pending_events`]).
    pub async fn subscribe(
        &self,
        matchers: Vec<Matcher>,
        grants: Arc<Grants>,
        resume: Resume,
    ) -> Result<Subscription, HubError> {
        let typed = matchers
            .into_iter()
            .map(|m| (m.matcher_type(), m))
            .collect();
        self.subscribe_typed(typed, grants, resume).await
    }

    /// Like [`Hub::subscribe`], with each matcher's type as the subscriber
    /// wrote it (`match_urlpattern=*` is a `urlpattern` subscription even
    /// though `*` matches everything): the type named in subscription events.
    pub async fn subscribe_typed(
        &self,
        matchers: Vec<(MatcherType, Matcher)>,
        grants: Arc<Grants>,
        resume: Resume,
    ) -> Result<Subscription, HubError> {
        if let Some(presence) = &self.inner.presence {
            // Refused before any work is done for it; `join` decides.
            presence.check_room(matchers.len())?;
        }
        let plain: Vec<Matcher> = matchers.iter().map(|(_, m)| m.clone()).collect();
        let registration = self.inner.registry.register(plain, Arc::clone(&grants));
        let state = Arc::clone(registration.state());
        let mut subscription =
            Subscription::start(registration, Arc::clone(&self.inner.log), resume).await?;
        if let Some(presence) = &self.inner.presence {
            // Refused, the subscription is dropped, and with it its
            // registration: nothing was sent to the client yet.
            let membership = presence.join(&matchers, &grants)?;
            let on_slow = Arc::clone(&membership);
            state.on_slow(Box::new(move || on_slow.end()));
            subscription.set_membership(membership);
        }
        Ok(subscription)
    }

    /// The index of active subscriptions, when they are turned on.
    pub fn presence(&self) -> Option<&Arc<Presence>> {
        self.inner.presence.as_ref()
    }

    /// The id of the last update dispatched to subscribers, or `earliest`
    /// when there is none (or it is no longer retained): the reconciliation
    /// cursor of the subscription API.
    pub async fn last_event_id(&self) -> Result<String, HubError> {
        let position = self.inner.registry.last_dispatched();
        if position == 0 {
            return Ok("earliest".to_owned());
        }
        Ok(self
            .inner
            .log
            .id_before(position + 1)
            .await?
            .unwrap_or_else(|| "earliest".to_owned()))
    }
}
