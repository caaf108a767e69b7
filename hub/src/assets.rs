//! The phone web app, embedded at build time from `web/` (see `build.rs`).

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// File name, e.g. "app.js"; served at `/<name>` (and `index.html` also at `/`).
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/web_assets.rs"));

/// The asset for a request path, if any.
pub fn find(path: &str) -> Option<&'static Asset> {
    let name = match path.strip_prefix('/')? {
        "" => "index.html",
        name => name,
    };
    ASSETS.iter().find(|a| a.name == name)
}
