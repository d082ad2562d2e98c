//! The `orderly` binary's library: command dispatch, operator commands, the simulated outside
//! world (demo, load generator, end-to-end tests) and the benchmarks. `main.rs` only parses
//! and runs.

mod api_client;
#[cfg(feature = "bench")]
mod bench;
#[cfg(feature = "bench")]
mod chaos;
pub mod cli;
mod demo;
#[cfg(feature = "bench")]
mod loadgen;
pub mod ops;
mod report;
pub mod sim;
#[cfg(feature = "bench")]
mod soak;
pub mod workers;
