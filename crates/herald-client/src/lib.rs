//! An EventSource for Rust and a Mercure publisher (to be written).
