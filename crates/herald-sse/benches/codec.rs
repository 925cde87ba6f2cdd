//! Criterion benchmarks of the codec (being written).
fn main() {}
