//! TEMP STUB (not committed)
use std::collections::BTreeMap;
#[derive(Debug, Clone, Default)]
pub struct Config {
    m: BTreeMap<String, String>,
}
pub struct Node;
impl Node {
    pub fn name(&self) -> &str {
        ""
    }
    pub fn value(&self) -> Option<&str> {
        None
    }
    pub fn children(&self) -> std::slice::Iter<'_, Node> {
        [].iter()
    }
    pub fn child(&self, _n: &str) -> Option<&Node> {
        None
    }
}
impl Config {
    pub fn new() -> Config {
        Config::default()
    }
    pub fn load(_p: impl AsRef<std::path::Path>) -> Result<Config, String> {
        Err("stub".into())
    }
    pub fn save(&self, _p: impl AsRef<std::path::Path>) -> Result<(), String> {
        Err("stub".into())
    }
    pub fn get(&self, p: &str) -> Option<&str> {
        self.m.get(p).map(|s| s.as_str())
    }
    pub fn put(&mut self, p: &str, v: &str) -> Result<(), String> {
        self.m.insert(p.into(), v.into());
        Ok(())
    }
    pub fn locate(&self, _p: &str) -> Option<&Node> {
        None
    }
}
