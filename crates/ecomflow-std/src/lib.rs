//! ecomflow-std: the built-in plugins that need no external service (sources, transforms, sinks).

mod aggregation;
mod sinks;
mod sources;
#[cfg(test)]
mod test_support;
mod transforms;
