//! Reference for the `LeakLayer` row: the same subscriber (`tracing_subscriber::registry()`,
//! a span per request) without the layer, leaktracker installed, nothing tagged. The
//! difference from `axum-layer` is the layer's own cost; from `axum-untagged`, the
//! registry's.

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn main() {
    tracing::subscriber::set_global_default(tracing_subscriber::registry())
        .expect("the only subscriber");
    leaktracker_bench::service::service_main(
        "axum-registry",
        leaktracker_bench::service::Tagging::Span,
        leaktracker_bench::service::lt_info,
    );
}
