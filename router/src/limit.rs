//! Token-bucket rate limits per client IP and per bearer token: [`service::limit::Limiter`],
//! shared with the cell's per-user limit.

pub use service::limit::Limiter;
