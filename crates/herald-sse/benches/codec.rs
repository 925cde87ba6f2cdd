//! Codec benchmarks (placeholder until the criterion benches are written).

fn main() {}
