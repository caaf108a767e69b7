//! Embeds the phone app (`../web/*`) into the binary: one `Asset` per servable file, so the
//! hub is a single self-contained executable and serves whatever the web app consists of
//! (index.html, app.js, protocol.js, style.css, manifest, icons) without a list to keep in sync.

use std::fmt::Write as _;
use std::path::PathBuf;

/// Files the phone app cannot work without; missing ones get a build warning (and a 404).
const REQUIRED: &[&str] = &["index.html", "app.js", "protocol.js", "style.css"];
/// Development files in `web/` (npm, the type checker) that are not part of the app.
const NOT_SERVED: &[&str] = &[
    "package.json",
    "package-lock.json",
    "tsconfig.json",
    "tsconfig.sw.json",
];

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1;
    Some(match ext {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "webmanifest" => "application/manifest+json",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

fn main() {
    let manifest_dir =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest_dir.join("..").join("web");
    println!("cargo:rerun-if-changed={}", web.display());

    let mut files = Vec::new();
    if let Ok(dir) = std::fs::read_dir(&web) {
        for entry in dir.flatten() {
            let path = entry.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
                continue;
            };
            // Tests and dotfiles are part of the source tree, not of the app.
            if !path.is_file()
                || name.starts_with('.')
                || name.contains(".test.")
                || NOT_SERVED.contains(&name.as_str())
            {
                continue;
            }
            if let Some(ct) = content_type(&name) {
                files.push((name, ct, path));
            }
        }
    }
    files.sort();
    for required in REQUIRED {
        if !files.iter().any(|(n, _, _)| n == required) {
            println!("cargo:warning=web/{required} is missing; the hub will answer 404 for it");
        }
    }

    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (name, ct, path) in &files {
        let abs = path.canonicalize().unwrap_or_else(|_| path.clone());
        let _ = writeln!(
            code,
            "    Asset {{ name: {name:?}, content_type: {ct:?}, body: include_bytes!({:?}) }},",
            abs.display().to_string()
        );
    }
    code.push_str("];\n");
    let out =
        PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("web_assets.rs");
    std::fs::write(&out, code).expect("write web_assets.rs into OUT_DIR");
}
