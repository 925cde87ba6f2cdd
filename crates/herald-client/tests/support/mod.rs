//! A hand-written HTTP/1.1 server on 127.0.0.1:0, so that tests control every byte.

pub use herald_testkit::*;
