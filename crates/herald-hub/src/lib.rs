//! The pub/sub core of herald, with no HTTP and no token bytes.
//!
//! A hub is an ordered log of updates plus local dispatch. Map of the crate:
//! - [`Update`] (what a publisher sends) and its validation rules; [`Entry`]
//!   (a committed update, its SSE frame encoded once and shared).
//! - [`text`] and [`Namespace`]: the character rules and the reserved hub namespace.
//! - [`Matcher`], [`MatcherType`], [`Matchers`]: `exact`, `urlpattern`, `*`
//!   and legacy topic [`Selector`]s, compiled once, with cached match results.
//! - [`UriTemplate`]: RFC 6570 templates compiled for matching, for the topic
//!   selectors of the Mercure revisions before draft 08.
//! - [`Grants`]: what a token allows, and the authorization decisions.
//! - [`Log`] and [`MemoryLog`]: the ordered, position-indexed log.
//! - [`Registry`]: connected subscribers, indexed by topic and pattern, sharded.
//! - [`Subscription`]: replay from the log, then live updates, without gap or duplicate.
//! - [`Presence`]: the index of active subscriptions and the subscription
//!   events published when one starts or ends (optional).
//! - [`Hub`]: ties them together; what an application embeds.

mod entry;
mod error;
mod grants;
mod group;
mod hub;
mod ids;
mod interner;
mod log;
mod matcher;
mod namespace;
mod pattern_regex;
mod presence;
mod presence_queue;
mod registry;
mod subscription;
mod template;
pub mod text;
mod update;

pub use entry::{Entry, EntryParts, Position};
pub use error::{ErrorKind, HubError};
pub use grants::{Grants, SubscribeGrant};
pub use group::Wire;
pub use hub::{Hub, HubBuilder};
pub use ids::IdScheme;
pub use log::{
    DEFAULT_MEMORY_LOG_BYTES, Dispatch, EntryFilter, FilteredRead, Log, LogStats, MemoryLog,
    ReadLimit, filter_keeps, has_any,
};
pub use matcher::{
    DEFAULT_MAX_PATTERN_MEMORY, MAX_SUBSCRIPTION_PATTERN_BYTES, Matcher, MatcherLimits,
    MatcherType, Matchers, Pattern, Selector,
};
pub use namespace::Namespace;
pub use presence::{ActiveSubscription, Membership, Presence, encode_variable};
pub use presence_queue::{DEFAULT_MAX_PENDING_BYTES, DEFAULT_MAX_PENDING_EVENTS, EventStats, Full};
pub use registry::{DEFAULT_QUEUE_BYTES, Registration, Registry, RegistryStats, SubscriberState};
pub use subscription::{Resume, Subscription};
pub use template::UriTemplate;
pub use update::{Update, UpdateLimits, parse_retry};
/// The URL type a hub is built with ([`Hub::builder`]), so that an
/// application needs no `url` dependency of its own.
pub use url::Url;
