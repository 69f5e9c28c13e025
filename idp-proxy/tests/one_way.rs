//! The house rules of docs/ARCHITECTURE.md: imports run `interaction → provider`, never back
//! (the pages ask; the provider issues codes, answers clients and renders pages), and no two
//! top-level modules of `src/` import each other, directly or through others.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable source directory") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_provider_never_imports_the_pages() {
    let provider = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/provider");
    let mut files = Vec::new();
    rust_files(&provider, &mut files);
    assert!(files.len() > 10, "provider/ sources found: {files:?}");
    let offenders: Vec<String> = files
        .iter()
        .filter(|f| {
            std::fs::read_to_string(f)
                .expect("readable source")
                .contains("crate::interaction")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        offenders.is_empty(),
        "provider/ imports interaction/ in {offenders:?}"
    );
}

/// The top-level modules each top-level module of `src/` names as `crate::…`.
fn import_graph() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let module_of = |p: &Path| -> Option<String> {
        let first = p.strip_prefix(&src).ok()?.components().next()?;
        let name = first
            .as_os_str()
            .to_str()?
            .trim_end_matches(".rs")
            .to_string();
        (name != "lib" && name != "main").then_some(name)
    };
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: std::collections::BTreeSet<String> =
        files.iter().filter_map(|f| module_of(f)).collect();
    let mut graph = std::collections::BTreeMap::new();
    for f in &files {
        let Some(from) = module_of(f) else { continue };
        let text = std::fs::read_to_string(f).expect("readable source");
        let edges: &mut std::collections::BTreeSet<String> = graph.entry(from.clone()).or_default();
        for (at, _) in text.match_indices("crate::") {
            let name: String = text[at + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name != from && modules.contains(&name) {
                edges.insert(name);
            }
        }
    }
    graph
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    let graph = import_graph();
    assert!(
        graph
            .get("interaction")
            .is_some_and(|e| e.contains("provider")),
        "{graph:?}"
    );
    // A depth-first walk from each module: reaching it again is a circle.
    for start in graph.keys() {
        let mut stack: Vec<Vec<&String>> = vec![vec![start]];
        while let Some(path) = stack.pop() {
            for next in graph.get(*path.last().unwrap()).into_iter().flatten() {
                assert!(next != start, "import circle: {path:?} -> {next}");
                if !path.contains(&next) {
                    let mut longer = path.clone();
                    longer.push(next);
                    stack.push(longer);
                }
            }
        }
    }
}
