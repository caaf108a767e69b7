//! The hub's top-level modules import each other without a circle (issue 10): each layer
//! (store, router, switchboard, notify, state, http/ws/server, hub) only uses the ones below it.
//! The graph is read from the sources: every non-comment `crate::<module>` outside `#[cfg(test)]`
//! modules and `tests.rs` files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_dir() {
        let mut entries: Vec<_> = fs::read_dir(path)
            .expect("read src dir")
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for entry in entries {
            rust_files(&entry, out);
        }
    } else if path.is_file()
        && path.extension().is_some_and(|e| e == "rs")
        && !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().contains("test"))
    {
        out.push(path.to_path_buf());
    }
}

/// Module -> the modules it names, from the files under `src`.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = fs::read_dir(src)
        .expect("read src")
        .map(|e| e.expect("entry").path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_string_lossy().into_owned();
            (p.is_dir() || p.extension().is_some_and(|e| e == "rs")).then_some(name)
        })
        .filter(|m| m != "lib" && m != "main")
        .collect();
    let mut deps = BTreeMap::new();
    for module in &modules {
        let mut files = Vec::new();
        rust_files(&src.join(format!("{module}.rs")), &mut files);
        rust_files(&src.join(module), &mut files);
        let mut uses = BTreeSet::new();
        for file in files {
            let text = fs::read_to_string(&file).expect("read source");
            // Unit tests may reach anywhere; they are not part of the layering.
            let code = text.split("#[cfg(test)]\nmod ").next().unwrap_or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
                    if modules.contains(&name) && &name != module {
                        uses.insert(name);
                    }
                }
            }
        }
        deps.insert(module.clone(), uses);
    }
    deps
}

/// The first circle found, as a path that starts and ends at the same module.
fn find_circle(deps: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        deps: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut circle = path[at..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in deps.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, deps, done, path) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    deps.keys()
        .find_map(|m| visit(m, deps, &mut done, &mut Vec::new()))
}

#[test]
fn the_hub_modules_import_each_other_without_a_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let deps = graph(&src);
    assert!(deps.len() > 10, "the hub's modules were found: {deps:?}");
    if let Some(circle) = find_circle(&deps) {
        panic!(
            "import circle among the hub's modules: {}",
            circle.join(" -> ")
        );
    }
}

#[test]
fn a_circle_is_found_when_there_is_one() {
    let mut deps = BTreeMap::new();
    deps.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    deps.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    deps.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(
        find_circle(&deps),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    deps.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_circle(&deps), None);
}
