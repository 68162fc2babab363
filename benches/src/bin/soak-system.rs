//! The soak's reference run: the same load as `soak`, with `System` as the global
//! allocator (the scopes tag nothing), so that the resident memory `soak` reports can be
//! compared with what the system allocator alone does with this load over time.
//!
//! Usage: `soak-system [--secs N] [--quick]`.

#[global_allocator]
static ALLOC: std::alloc::System = std::alloc::System;

include!("../soak_body.rs");
