//! `zgossip node --metrics ADDR --http ADDR`: starts the command's HTTP
//! endpoints and prints where they are. The same address given to both
//! is one listener that serves the page and `/metrics`; two addresses
//! are two listeners.

use std::net::SocketAddr;
use std::sync::Arc;

use zgossip::Node;

use crate::http_server::{self, Route};
use crate::json::json_text;
use crate::{metrics_http, page_http};

/// Starts the endpoints asked for, and prints a line for each
/// (`metrics at URL`, `page at URL`, or a JSON event with `json`).
pub fn start(
    metrics: Option<&str>,
    page: Option<&str>,
    node: &Arc<Node>,
    json: bool,
) -> Result<(), String> {
    match (metrics, page) {
        (Some(m), Some(p)) if m == p => {
            let routes: Vec<Route> = vec![
                metrics_http::route(node.clone()),
                page_http::route(node.clone()),
            ];
            let bound = http_server::serve(m, "--metrics/--http", routes)?;
            announce("metrics", bound, metrics_http::PATH, json);
            announce("page", bound, page_http::PATH, json);
        }
        _ => {
            if let Some(m) = metrics {
                let bound =
                    http_server::serve(m, "--metrics", vec![metrics_http::route(node.clone())])?;
                announce("metrics", bound, metrics_http::PATH, json);
            }
            if let Some(p) = page {
                let bound = http_server::serve(p, "--http", vec![page_http::route(node.clone())])?;
                announce("page", bound, page_http::PATH, json);
            }
        }
    }
    Ok(())
}

/// `metrics at http://127.0.0.1:9464/metrics`, or
/// `{"event":"metrics","url":"http://..."}`.
fn announce(what: &str, bound: SocketAddr, path: &str, json: bool) {
    let url = format!("http://{bound}{path}");
    if json {
        println!("{{\"event\":\"{what}\",\"url\":{}}}", json_text(&url));
    } else {
        println!("{what} at {url}");
    }
}
