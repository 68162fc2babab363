//! The axum service benchmark, every request tagged by its `tracing` span through
//! `LeakLayer` (a `tracing_subscriber::registry()` with the layer), no stacks.

use tracing_subscriber::layer::SubscriberExt;

#[global_allocator]
static ALLOC: leaktracker::TrackingAllocator = leaktracker::TrackingAllocator::system();

fn main() {
    let subscriber = tracing_subscriber::registry().with(
        leaktracker::LeakLayer::global()
            .name_field("name")
            .kind_field("kind"),
    );
    tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    leaktracker_bench::service::service_main(
        "axum-layer",
        leaktracker_bench::service::Tagging::Span,
        leaktracker_bench::service::lt_info,
    );
}
