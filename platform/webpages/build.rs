//! Generates the table of embedded files: every file under `web/static/` and the three pages
//! under `web/pages/`, each as `include_bytes!` with its content type and a content hash
//! (the ETag). Only files are read here; nothing is built (the vendored map library is
//! committed output of `web/build.sh`).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The pages: URL path → file under `web/pages/`.
const PAGES: &[(&str, &str)] = &[
    ("/", "index.html"),
    ("/restaurant", "restaurant.html"),
    ("/ops", "ops.html"),
];

fn content_type(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("wav") => "audio/wav",
        Some("json") => "application/json",
        _ => "text/plain; charset=utf-8",
    }
}

/// FNV-1a, 64 bits: stable across builds and platforms, enough to tell versions apart.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let web = manifest
        .join("../../web")
        .canonicalize()
        .expect("web/ exists");
    println!("cargo:rerun-if-changed={}", web.join("static").display());
    println!("cargo:rerun-if-changed={}", web.join("pages").display());
    let mut entries: Vec<(String, PathBuf)> = PAGES
        .iter()
        .map(|(url, file)| ((*url).to_owned(), web.join("pages").join(file)))
        .collect();
    let mut files = Vec::new();
    walk(&web.join("static"), &mut files);
    for f in files {
        let rel = f.strip_prefix(web.join("static")).expect("under static/");
        let url = format!("/static/{}", rel.to_string_lossy().replace('\\', "/"));
        entries.push((url, f));
    }
    let mut table = String::from("&[\n");
    for (url, path) in &entries {
        println!("cargo:rerun-if-changed={}", path.display());
        let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        writeln!(
            table,
            "    Asset {{ path: {url:?}, content_type: {ct:?}, etag: \"\\\"{h:016x}\\\"\", body: include_bytes!({p:?}) }},",
            ct = content_type(path),
            h = fnv(&bytes),
            p = path.display().to_string(),
        )
        .expect("writing to a String");
    }
    table.push(']');
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it")).join("assets.rs");
    std::fs::write(out, table).expect("writing the asset table");
}
