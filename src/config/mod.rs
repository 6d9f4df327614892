//! ZPL configuration trees (ZeroMQ RFC 4), read and written the way CZMQ
//! 4.2.1 `zconfig` reads and writes them.
//!
//! A [`Config`] is a tree of [`ConfigNode`]s under a root named `root`. Each node
//! has a name, an optional value, comment lines and ordered children.
//!
//! # Reading (as `zconfig_chunk_load`)
//!
//! - Lines end at `\n`; trailing whitespace (C `isspace`, so `\r` too) is
//!   dropped. A NUL byte ends its line, as in C.
//! - A line starting with `#` in column 0 is a comment; its text (after the
//!   `#`) is kept on the root, wherever it appears, and written back at the
//!   top of the file. Comments after a value or indented are discarded.
//! - Indentation is spaces only, 4 per level; another count is an error,
//!   even on a comment line. A tab is not indentation: a line with text
//!   after a tab is an error.
//! - A line is `name`, `name = value`, `name = "value"` or `name = 'value'`,
//!   optionally followed by `# comment`. A bare `name` gets the value `""`.
//!   Quoted values end at the first matching quote (no escapes); a missing
//!   closing quote is an error. Bare values run to the first `#`, trailing
//!   whitespace removed, except that a bare value starting with `#` after a
//!   space (`name = #x`) is kept whole, as CZMQ does.
//! - Names are letters, digits and `$-_@.&+/`, not starting or ending with
//!   `/`. A line indented deeper than one level below the previous node is
//!   an error. Any error rejects the whole text.
//!
//! # Writing (as `zconfig_save`)
//!
//! Root comments first, one `#text` line each, then an empty line; then
//! each node in document order, indented 4 spaces per level below the root:
//! `name` when it has no value, else `name = "value"`. CZMQ always uses
//! double quotes, even when the value holds one (which it cannot read back);
//! here such a value is written `'value'`, or bare when it holds both kinds
//! of quote. Values no ZPL line can carry (a newline or NUL; both quotes and
//! a leading quote, leading or trailing whitespace or an inner `#`) are refused by
//! [`Config::put`] with [`ConfigError::BadValue`].
//!
//! Every walk over the tree (parse, print, compare, clone, drop) is
//! iterative, so depth is bounded only by memory.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

/// An error reading, writing or changing a configuration.
#[derive(Debug)]
pub enum ConfigError {
    /// The file could not be read or written.
    Io {
        /// The file concerned (`-` for standard output).
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The text is not valid ZPL; `line` counts from 1.
    Syntax {
        /// Line number, from 1.
        line: usize,
        /// What is wrong (for a file, ends with the file's path).
        message: String,
    },
    /// A path given to [`Config::put`] is not a `/`-separated list of names.
    BadPath(String),
    /// A value given to [`Config::put`] cannot be written as ZPL.
    BadValue(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            ConfigError::Syntax { line, message } => {
                write!(f, "ZPL syntax error at line {line}: {message}")
            }
            ConfigError::BadPath(m) => write!(f, "bad configuration path: {m}"),
            ConfigError::BadValue(m) => write!(f, "bad configuration value: {m}"),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// One node of a configuration tree.
pub struct ConfigNode {
    name: String,
    value: Option<String>,
    comments: Vec<String>,
    children: Vec<ConfigNode>,
}

impl ConfigNode {
    fn new(name: &str, value: Option<String>) -> ConfigNode {
        ConfigNode {
            name: name.to_string(),
            value,
            comments: Vec::new(),
            children: Vec::new(),
        }
    }

    /// A copy of this node without its children.
    fn shallow(&self) -> ConfigNode {
        ConfigNode {
            name: self.name.clone(),
            value: self.value.clone(),
            comments: self.comments.clone(),
            children: Vec::with_capacity(self.children.len()),
        }
    }

    /// The node's name (`root` for the root).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's value: `None` for a node created only as a parent by
    /// [`Config::put`]; parsed nodes always have one, maybe empty.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The children, in order.
    pub fn children(&self) -> impl Iterator<Item = &ConfigNode> {
        self.children.iter()
    }

    /// The first child with this name.
    pub fn child(&self, name: &str) -> Option<&ConfigNode> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Comment lines (text after `#`), written before the node.
    pub fn comments(&self) -> &[String] {
        &self.comments
    }

    fn child_mut(&mut self, name: &str) -> Option<&mut ConfigNode> {
        self.children.iter_mut().find(|c| c.name == name)
    }
}

impl Drop for ConfigNode {
    fn drop(&mut self) {
        // Flatten instead of recursing: every node dropped here has no
        // children left, so a deep tree cannot overflow the stack.
        let mut stack = std::mem::take(&mut self.children);
        while let Some(mut node) = stack.pop() {
            stack.append(&mut node.children);
        }
    }
}

impl Clone for ConfigNode {
    fn clone(&self) -> ConfigNode {
        // Post-order with an explicit stack: (source, next child, copy).
        let mut stack: Vec<(&ConfigNode, usize, ConfigNode)> = vec![(self, 0, self.shallow())];
        loop {
            let Some(top) = stack.last_mut() else {
                // Unreachable: the loop returns when the root is finished.
                return self.shallow();
            };
            if let Some(child) = top.0.children.get(top.1) {
                top.1 += 1;
                stack.push((child, 0, child.shallow()));
                continue;
            }
            let Some((_, _, done)) = stack.pop() else {
                return self.shallow();
            };
            match stack.last_mut() {
                Some(parent) => parent.2.children.push(done),
                None => return done,
            }
        }
    }
}

impl PartialEq for ConfigNode {
    fn eq(&self, other: &ConfigNode) -> bool {
        let mut stack = vec![(self, other)];
        while let Some((a, b)) = stack.pop() {
            if a.name != b.name
                || a.value != b.value
                || a.comments != b.comments
                || a.children.len() != b.children.len()
            {
                return false;
            }
            stack.extend(a.children.iter().zip(b.children.iter()));
        }
        true
    }
}

impl Eq for ConfigNode {}

impl fmt::Debug for ConfigNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // One line per node, indented by depth; iterative.
        let mut stack = vec![(self, 0usize)];
        while let Some((node, depth)) = stack.pop() {
            write!(f, "{:1$}{2:?}", "", depth * 2, node.name)?;
            if let Some(v) = &node.value {
                write!(f, " = {v:?}")?;
            }
            if !node.comments.is_empty() {
                write!(f, " #{:?}", node.comments)?;
            }
            writeln!(f)?;
            stack.extend(node.children.iter().rev().map(|c| (c, depth + 1)));
        }
        Ok(())
    }
}

/// A ZPL configuration tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    root: ConfigNode,
}

impl Default for Config {
    fn default() -> Config {
        Config::new()
    }
}

/// C `isspace` in the C locale.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// RFC 4 name characters (ASCII only, as C `isalnum` in the C locale).
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'$' | b'-' | b'_' | b'@' | b'.' | b'&' | b'+' | b'/')
}

fn syntax(line: usize, message: impl Into<String>) -> ConfigError {
    ConfigError::Syntax {
        line,
        message: message.into(),
    }
}

/// Checks that nothing but whitespace and a comment follows; `rest` is the
/// remainder of the line.
fn verify_eoln(rest: &str, line: usize) -> Result<(), ConfigError> {
    let Some(pos) = rest.bytes().position(|b| !is_space(b)) else {
        return Ok(());
    };
    let junk = &rest[pos..];
    if junk.starts_with('#') {
        return Ok(());
    }
    let shown: String = junk.chars().take(40).collect();
    if rest.as_bytes()[..pos].contains(&b'\t') {
        Err(syntax(
            line,
            format!("unexpected text '{shown}' after a tab; indent with 4 spaces per level"),
        ))
    } else {
        Err(syntax(line, format!("unexpected text '{shown}'")))
    }
}

/// Reads the value part of a line after the name; returns `""` when there
/// is no `=`.
fn collect_value(rest: &str, line: usize) -> Result<&str, ConfigError> {
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    if bytes.get(i) != Some(&b'=') {
        verify_eoln(&rest[i..], line)?;
        return Ok("");
    }
    let eq = i;
    i += 1;
    while i < bytes.len() && is_space(bytes[i]) {
        i += 1;
    }
    let start = i;
    match bytes.get(start) {
        Some(&q) if q == b'"' || q == b'\'' => {
            let body = &rest[start + 1..];
            match body.bytes().position(|b| b == q) {
                Some(end) => {
                    verify_eoln(&body[end + 1..], line)?;
                    Ok(&body[..end])
                }
                None => Err(syntax(line, format!("missing closing {}", q as char))),
            }
        }
        _ => match rest[start..].find('#') {
            None => Ok(&rest[start..]),
            Some(offset) => {
                // CZMQ cuts the line where the comment's leading
                // whitespace begins, then copies from the value's start.
                let mut cut = start + offset;
                while cut > eq + 1 && is_space(bytes[cut - 1]) {
                    cut -= 1;
                }
                if cut < start {
                    Ok(&rest[start..])
                } else {
                    Ok(&rest[start..cut])
                }
            }
        },
    }
}

/// Why a path segment is not a valid name, if it is not.
fn check_name(segment: &str) -> Result<(), String> {
    if segment.is_empty() {
        return Err("empty name (doubled, leading or trailing '/')".to_string());
    }
    if let Some(c) = segment
        .chars()
        .find(|&c| !c.is_ascii() || !is_name_char(c as u8))
    {
        return Err(format!(
            "'{segment}' holds {c:?}; names use letters, digits and $-_@.&+"
        ));
    }
    Ok(())
}

/// How a value is written: the quote to use, or `None` for bare.
fn value_quote(value: &str) -> Result<Option<char>, String> {
    if value.contains('\n') || value.contains('\0') {
        return Err("a value cannot hold a newline or NUL".to_string());
    }
    if !value.contains('"') {
        return Ok(Some('"'));
    }
    if !value.contains('\'') {
        return Ok(Some('\''));
    }
    let b = value.as_bytes();
    let bare = !b.is_empty()
        && !is_space(b[0])
        && b[0] != b'"'
        && b[0] != b'\''
        && !is_space(b[b.len() - 1])
        && (b[0] == b'#' || !value.contains('#'));
    if bare {
        Ok(None)
    } else {
        Err(format!(
            "{value:?} holds both quote characters and cannot be written unquoted \
             (it starts with a quote, has a '#' or leading or trailing whitespace)"
        ))
    }
}

/// Appends a value as written: quoted when possible, as CZMQ, else bare.
fn push_value(out: &mut String, value: &str) {
    // Values always pass `value_quote` (put checks them and parsed ones
    // are representable); anything else falls back to CZMQ's '"'.
    match value_quote(value) {
        Ok(None) => out.push_str(value),
        Ok(Some(q)) => {
            out.push(q);
            out.push_str(value);
            out.push(q);
        }
        Err(_) => {
            out.push('"');
            out.push_str(value);
            out.push('"');
        }
    }
}

/// Splits a path into segments after dropping one leading '/'.
fn segments(path: &str) -> std::str::Split<'_, char> {
    path.strip_prefix('/').unwrap_or(path).split('/')
}

impl Config {
    /// An empty tree: just the root.
    pub fn new() -> Config {
        Config {
            root: ConfigNode::new("root", None),
        }
    }

    /// Parses ZPL text. Any error rejects the whole text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::new();
        for (index, raw) in text.split('\n').enumerate() {
            let lineno = index + 1;
            // A NUL ends the line for C; then trim trailing whitespace.
            let raw = raw.split('\0').next().unwrap_or("");
            let end = raw.bytes().rposition(|b| !is_space(b)).map_or(0, |p| p + 1);
            let line = &raw[..end];
            if let Some(comment) = line.strip_prefix('#') {
                config.root.comments.push(comment.to_string());
            }
            let indent = line.bytes().take_while(|&b| b == b' ').count();
            if indent % 4 != 0 {
                return Err(syntax(
                    lineno,
                    format!("indentation of {indent} spaces; indent 4 spaces per level"),
                ));
            }
            let level = indent / 4;
            let rest = &line[indent..];
            let name_len = rest.bytes().take_while(|&b| is_name_char(b)).count();
            let name = &rest[..name_len];
            if name.is_empty() {
                verify_eoln(rest, lineno)?;
                continue;
            }
            if name.starts_with('/') || name.ends_with('/') {
                return Err(syntax(
                    lineno,
                    format!("'/' is not valid at the start or end of name '{name}'"),
                ));
            }
            let value = collect_value(&rest[name_len..], lineno)?;
            let mut parent = &mut config.root;
            for _ in 0..level {
                parent = match parent.children.last_mut() {
                    Some(child) => child,
                    None => {
                        return Err(syntax(
                            lineno,
                            format!("'{name}' is indented more than one level below its parent"),
                        ))
                    }
                };
            }
            parent
                .children
                .push(ConfigNode::new(name, Some(value.to_string())));
        }
        Ok(config)
    }

    /// Loads a file (as `zconfig_load`). Errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let in_file = |line: usize, message: String| ConfigError::Syntax {
            line,
            message: format!("{message} (in {})", path.display()),
        };
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let line = 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            in_file(line, "text is not valid UTF-8".to_string())
        })?;
        Config::parse(text).map_err(|e| match e {
            ConfigError::Syntax { line, message } => in_file(line, message),
            other => other,
        })
    }

    /// Writes [`Config::to_text`] to a file, or to standard output when
    /// `path` is `-` (as `zconfig_save`).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let path = path.as_ref();
        let text = self.to_text();
        let result = if path == Path::new("-") {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        } else {
            std::fs::write(path, text)
        };
        result.map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// The ZPL text [`Config::save`] writes, as `zconfig_str_save`.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        let mut stack = vec![(&self.root, 0usize)];
        while let Some((node, level)) = stack.pop() {
            for comment in &node.comments {
                out.push('#');
                out.push_str(comment);
                out.push('\n');
            }
            if !node.comments.is_empty() {
                out.push('\n');
            }
            if level > 0 {
                for _ in 1..level {
                    out.push_str("    ");
                }
                out.push_str(&node.name);
                if let Some(value) = &node.value {
                    out.push_str(" = ");
                    push_value(&mut out, value);
                }
                out.push('\n');
            }
            stack.extend(node.children.iter().rev().map(|c| (c, level + 1)));
        }
        out
    }

    /// The value at a `/`-separated path (leading `/` ignored); `None` when
    /// no node is there or the node has no value.
    pub fn get(&self, path: &str) -> Option<&str> {
        self.locate(path).and_then(ConfigNode::value)
    }

    /// The value at `path`, or `default` when there is none. (CZMQ's
    /// `zconfig_get` returns NULL, not the default, for a node that exists
    /// without a value; here the default is returned.)
    pub fn get_or<'a>(&'a self, path: &str, default: &'a str) -> &'a str {
        self.get(path).unwrap_or(default)
    }

    /// Sets the value at `path`, creating missing nodes on the way (they
    /// get no value), as `zconfig_put`. The first child of a given name is
    /// followed when several share it.
    pub fn put(&mut self, path: &str, value: &str) -> Result<(), ConfigError> {
        for segment in segments(path) {
            check_name(segment).map_err(|m| ConfigError::BadPath(format!("{path:?}: {m}")))?;
        }
        value_quote(value).map_err(|m| ConfigError::BadValue(format!("at {path:?}: {m}")))?;
        let mut node = &mut self.root;
        for segment in segments(path) {
            if node.child_mut(segment).is_none() {
                node.children.push(ConfigNode::new(segment, None));
            }
            node = match node.child_mut(segment) {
                Some(child) => child,
                None => return Err(ConfigError::BadPath(path.to_string())),
            };
        }
        node.value = Some(value.to_string());
        Ok(())
    }

    /// The node at a `/`-separated path (leading `/` ignored).
    pub fn locate(&self, path: &str) -> Option<&ConfigNode> {
        let mut node = &self.root;
        for segment in segments(path) {
            node = node.child(segment)?;
        }
        Some(node)
    }

    /// The root node (named `root`; its comments head the file).
    pub fn root(&self) -> &ConfigNode {
        &self.root
    }
}

#[cfg(test)]
mod tests;
