//! `zgossip node --http ADDR`: the page that shows the network, as routes
//! of the command's HTTP server (`http_server.rs`). The page, its script
//! and its style sheet are files of `cli/assets/` built into the binary;
//! the script polls `GET /api/state?q=SEARCH` (`page_state.rs`) every
//! second and shows every string it gets as text.

use std::sync::Arc;

use zgossip::Node;

use crate::http_server::{query_param, Request, Response, Route};
use crate::page_state;

/// The path of the page.
pub const PATH: &str = "/";

const PAGE: &str = include_str!("../assets/page.html");
const SCRIPT: &str = include_str!("../assets/page.js");
const STYLE: &str = include_str!("../assets/page.css");

/// Only this origin's script and style, no inline code, no frames: a
/// string that got into the page as markup could still run nothing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
                      connect-src 'self'; img-src 'self'; base-uri 'none'; \
                      form-action 'none'; frame-ancestors 'none'";

/// Serves `/`, `/page.js`, `/page.css` and `/api/state`.
pub fn route(node: Arc<Node>) -> Route {
    Route::new(move |r: &Request| {
        let answer = match r.path.as_str() {
            PATH => asset("text/html; charset=utf-8", PAGE)
                .with_header("Content-Security-Policy", POLICY),
            "/page.js" => asset("text/javascript; charset=utf-8", SCRIPT),
            "/page.css" => asset("text/css; charset=utf-8", STYLE),
            "/api/state" => state(&node, r),
            _ => return None,
        };
        Some(
            answer
                .with_header("X-Content-Type-Options", "nosniff")
                .with_header("Referrer-Policy", "no-referrer"),
        )
    })
}

fn asset(content_type: &'static str, text: &str) -> Response {
    Response::ok(content_type, text.to_string())
}

fn state(node: &Node, r: &Request) -> Response {
    let query = query_param(&r.query, "q").unwrap_or_default();
    match page_state::read(node, &query) {
        Ok(state) => Response::ok("application/json", state.to_json())
            .with_header("Cache-Control", "no-store"),
        Err(e) => Response::error("503 Service Unavailable", &e.to_string()),
    }
}
