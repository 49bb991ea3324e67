//! Shared server state: the services every handler calls.

use uplift_service::Services;
use uplift_store::Store;

/// State shared by all handlers.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    /// The address clients reach the server at (`https://uplift.example.com`), which
    /// links and `Location` start with; without it they follow the request's `Host`.
    pub public_url: Option<std::sync::Arc<str>>,
}

impl AppState {
    pub fn new(store: Store) -> Self {
        AppState {
            services: Services::new(store),
            public_url: None,
        }
    }

    /// Links start with `url` (an `http`/`https` origin, maybe with a path prefix).
    pub fn with_public_url(mut self, url: &str) -> Self {
        self.public_url = Some(url.trim_end_matches('/').into());
        self
    }
}
