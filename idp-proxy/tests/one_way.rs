//! The house rule of docs/ARCHITECTURE.md: imports run `interaction → provider`, never back.
//! The pages ask; the provider issues codes, answers clients and renders pages.

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
