//! Values compiled from a source string, shared while anyone holds them.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

/// Compiled values by source, held weakly: identical sources compile once
/// and are shared while any holder keeps them; the entries of dropped ones
/// are swept out as the map doubles.
pub(crate) struct Interner<T>(Mutex<Entries<T>>);

struct Entries<T> {
    by_source: HashMap<Box<str>, Weak<T>>,
    /// The size at which dead entries are swept out next.
    sweep_at: usize,
}

/// Below this many entries, dead ones are left alone.
const FIRST_SWEEP: usize = 1024;

impl<T> Default for Interner<T> {
    fn default() -> Self {
        Self(Mutex::new(Entries {
            by_source: HashMap::new(),
            sweep_at: FIRST_SWEEP,
        }))
    }
}

impl<T> Interner<T> {
    /// The live value compiled from `source`, or a new one from `build`.
    pub(crate) fn get_or_build<E>(
        &self,
        source: &str,
        build: impl FnOnce() -> Result<T, E>,
    ) -> Result<Arc<T>, E> {
        if let Some(existing) = self.0.lock().by_source.get(source).and_then(Weak::upgrade) {
            return Ok(existing);
        }
        // Built without the lock: a costly build must not hold up every other.
        let value = Arc::new(build()?);
        let mut entries = self.0.lock();
        if let Some(existing) = entries.by_source.get(source).and_then(Weak::upgrade) {
            // Built meanwhile by another caller: share that one.
            return Ok(existing);
        }
        if entries.by_source.len() >= entries.sweep_at {
            entries.by_source.retain(|_, weak| weak.strong_count() > 0);
            // Amortized: a sweep costs the entries of at least as many inserts.
            entries.sweep_at = (entries.by_source.len() * 2).max(FIRST_SWEEP);
        }
        entries
            .by_source
            .insert(source.into(), Arc::downgrade(&value));
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_values_are_shared_and_dead_entries_are_swept() {
        let interner = Interner::<String>::default();
        let a = interner
            .get_or_build("a", || Ok::<_, ()>("A".into()))
            .unwrap();
        let again = interner.get_or_build("a", || Err(())).unwrap();
        assert!(Arc::ptr_eq(&a, &again));
        for n in 0..5000 {
            drop(interner.get_or_build(&n.to_string(), || Ok::<_, ()>(n.to_string())));
        }
        // Every dropped value's entry is swept as the map doubles: the map
        // stays within twice the first sweep's size.
        assert!(interner.0.lock().by_source.len() <= 2 * FIRST_SWEEP);
        assert!(
            interner.get_or_build("a", || Err(())).is_ok(),
            "a live entry stays"
        );
    }
}
