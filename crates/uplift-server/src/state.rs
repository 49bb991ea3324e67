//! Shared server state: the services every handler calls.

use uplift_service::Services;
use uplift_store::Store;

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        AppState {
            services: Services::new(store),
        }
    }
}
