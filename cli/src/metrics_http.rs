//! `zgossip node --metrics ADDR`: `GET /metrics`, the node's `METRICS`
//! text (Prometheus text exposition format 0.0.4), as a route of the
//! command's HTTP server (`http_server.rs`).

use std::sync::Arc;

use zgossip::Node;

use crate::http_server::{Request, Response, Route};

/// The path the metrics are served at.
pub const PATH: &str = "/metrics";

/// Serves `/metrics` (a query string is ignored): the text, or `503`
/// once the node has stopped. Also to a request without a `Host` header,
/// as an HTTP/1.0 scraper may send.
pub fn route(node: Arc<Node>) -> Route {
    Route::new(move |r: &Request| {
        (r.path == PATH).then(|| match node.metrics() {
            Ok(text) => Response::ok(zgossip::METRICS_CONTENT_TYPE, text),
            Err(e) => Response::error("503 Service Unavailable", &e.to_string()),
        })
    })
    .also_without_host()
}
