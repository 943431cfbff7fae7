//! The crate's layers (module map in `lib.rs`), checked: no module uses one of a higher layer.

use std::path::Path;

/// The layer of a module, by its path under `src/` (`format/dtype.rs`) or in `crate::` paths
/// (`format/dtype`). The element types are layer 0 with the error vocabulary that names them.
fn layer(rel: &str) -> Option<u8> {
    let mut parts = rel.split('/').map(|p| p.trim_end_matches(".rs"));
    let top = parts.next()?;
    if top == "format" && matches!(parts.next(), Some("dtype" | "lifecycle")) {
        return Some(0);
    }
    Some(match top {
        "error" | "failpoint" | "sync" => 0,
        "format" => 1,
        "fs" => 2,
        "catalog" => 3,
        "protocol" => 4,
        "array" | "batch" | "budget" | "container" | "hold" | "interop" | "load" | "open"
        | "table" | "umbrella" | "writer" => 5,
        "adopt" | "fsck" | "rebuild" => 6,
        _ => return None,
    })
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn no_module_uses_a_module_of_a_higher_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut checked = 0;
    let mut violations = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(&src)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if rel == "lib.rs" || rel == "layering.rs" {
            continue;
        }
        let own =
            layer(&rel).unwrap_or_else(|| panic!("{rel}: not in any layer of the module map"));
        let text = std::fs::read_to_string(f).unwrap();
        // Tests may reach anywhere: only the code before `#[cfg(test)]` counts.
        let code = text.split("#[cfg(test)]").next().unwrap();
        for (i, line) in code.lines().enumerate() {
            let line = line.trim_start();
            if line.starts_with("//") {
                continue;
            }
            for (at, _) in line.match_indices("crate::") {
                let rest = &line[at + "crate::".len()..];
                let module: String = rest
                    .split("::")
                    .take(2)
                    .map(|seg| {
                        seg.chars()
                            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    })
                    .map(String::from_iter)
                    .collect::<Vec<_>>()
                    .join("/");
                if let Some(l) = layer(&module) {
                    checked += 1;
                    if l > own {
                        violations.push(format!(
                            "{rel}:{}: layer {own} uses crate::{module} (layer {l})",
                            i + 1
                        ));
                    }
                }
            }
        }
    }
    assert!(
        checked > 100,
        "the scan found only {checked} crate:: paths: is it reading the sources?"
    );
    assert!(
        violations.is_empty(),
        "upward dependencies:\n{}",
        violations.join("\n")
    );
}
