//! `zgossip node --metrics ADDR --http ADDR`: starts the command's HTTP
//! endpoints and prints where they are. The same address given to both
//! is one listener that serves the page and `/metrics`; two addresses
//! are two listeners. Each answers the `Host` values of `http_host.rs`,
//! and the names given with `--http-host`.

use std::net::SocketAddr;
use std::sync::Arc;

use zgossip::Node;

use crate::http_host::AllowedHosts;
use crate::http_server::{self, Route, Site};
use crate::json::json_text;
use crate::{metrics_http, page_http};

/// Starts the endpoints asked for, answering `hosts` (besides IP
/// addresses and `localhost`), and prints a line for each (`metrics at
/// URL`, `page at URL`, or a JSON event with `json`).
pub fn start(
    metrics: Option<&str>,
    page: Option<&str>,
    hosts: &[String],
    node: &Arc<Node>,
    json: bool,
) -> Result<(), String> {
    let site = |routes: Vec<Route>| Site {
        routes,
        hosts: AllowedHosts::new(hosts),
    };
    match (metrics, page) {
        (Some(m), Some(p)) if m == p => {
            let routes: Vec<Route> = vec![
                metrics_http::route(node.clone()),
                page_http::route(node.clone()),
            ];
            let bound = http_server::serve(m, "--metrics/--http", site(routes))?;
            announce("metrics", bound, metrics_http::PATH, json);
            announce("page", bound, page_http::PATH, json);
        }
        _ => {
            if let Some(m) = metrics {
                let routes = vec![metrics_http::route(node.clone())];
                let bound = http_server::serve(m, "--metrics", site(routes))?;
                announce("metrics", bound, metrics_http::PATH, json);
            }
            if let Some(p) = page {
                let routes = vec![page_http::route(node.clone())];
                let bound = http_server::serve(p, "--http", site(routes))?;
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
