//! The module layering that ARCHITECTURE.md states ("Layers") holds in the code: every
//! `crate::` path in `src/` names a module its table row allows, every module has a row,
//! and the table itself has no cycle (every arrow points down).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What every module may use.
const GROUND: &str = "common";

/// The table under "## Layers": module -> the modules it may use.
fn stated_layers(architecture: &str) -> BTreeMap<String, BTreeSet<String>> {
    let section = architecture
        .split("\n## Layers")
        .nth(1)
        .expect("ARCHITECTURE.md has a \"## Layers\" section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let backticked =
        |cell: &str| -> Vec<String> { cell.split('`').skip(1).step_by(2).map(str::to_string).collect() };
    let mut layers = BTreeMap::new();
    for line in section.lines().filter(|line| line.starts_with("| `")) {
        let cells: Vec<&str> = line.split('|').collect();
        assert!(cells.len() >= 3, "a row of the Layers table: {line}");
        let module = backticked(cells[1]);
        assert_eq!(module.len(), 1, "one module per row: {line}");
        let uses: BTreeSet<String> = backticked(cells[2]).into_iter().collect();
        assert!(
            layers.insert(module[0].clone(), uses).is_none(),
            "{} has two rows",
            module[0]
        );
    }
    assert!(!layers.is_empty(), "the Layers table has rows");
    layers
}

/// The top-level modules of the library and their files (`src/main.rs`, `src/lib.rs`
/// and the separate binaries under `src/bin/` are not modules of it).
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("read src/") {
        let path = entry.expect("src/ entry").path();
        let name = path
            .file_stem()
            .and_then(|stem| stem.to_str())
            .unwrap_or_default()
            .to_string();
        if path.is_dir() {
            if name != "bin" {
                let mut files = Vec::new();
                rust_files(&path, &mut files);
                modules.insert(name, files);
            }
        } else if path.extension().is_some_and(|extension| extension == "rs")
            && name != "main"
            && name != "lib"
        {
            modules.insert(name, vec![path]);
        }
    }
    modules
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read a source dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            out.push(path);
        }
    }
}

/// The top-level modules a file's production code names through `crate::`. Tests (files
/// named `*_tests.rs`, and whatever follows a file's first `#[cfg(test)]`) and comments
/// do not count.
fn used_modules(source: &str) -> BTreeSet<String> {
    let production = source.split("#[cfg(test)]").next().unwrap_or(source);
    let mut used = BTreeSet::new();
    for line in production.lines() {
        let code = line.split("//").next().unwrap_or(line);
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(list) = rest.strip_prefix('{') {
                // `crate::{a::X, b}`: each item's first segment.
                let list = list.split('}').next().unwrap_or(list);
                for item in list.split(',') {
                    let first = item.trim().split("::").next().unwrap_or_default();
                    if !first.is_empty() {
                        used.insert(first.to_string());
                    }
                }
                continue;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                used.insert(name);
            }
        }
    }
    used
}

/// A cycle among the stated arrows, if any (as a path of modules).
fn find_cycle(layers: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        module: &str,
        layers: &BTreeMap<String, BTreeSet<String>>,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|on_path| on_path == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for next in layers.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, layers, done, path) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }
    let mut done = BTreeSet::new();
    layers
        .keys()
        .find_map(|module| visit(module, layers, &mut done, &mut Vec::new()))
}

#[test]
fn every_arrow_between_modules_is_one_architecture_md_states_and_points_down() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let architecture = std::fs::read_to_string(root.join("ARCHITECTURE.md")).expect("read ARCHITECTURE.md");
    let layers = stated_layers(&architecture);
    assert_eq!(find_cycle(&layers), None, "the Layers table has a cycle");
    let modules = modules(&root.join("src"));
    let mut problems = Vec::new();
    for module in layers.keys().filter(|module| !modules.contains_key(*module)) {
        problems.push(format!(
            "the Layers table names `{module}`, which src/ does not have"
        ));
    }
    for (module, files) in &modules {
        let Some(allowed) = layers.get(module) else {
            problems.push(format!("`{module}` has no row in the Layers table"));
            continue;
        };
        for file in files {
            if file.to_string_lossy().ends_with("_tests.rs") {
                continue;
            }
            let source = std::fs::read_to_string(file).expect("read a source file");
            for used in used_modules(&source) {
                if used != *module && used != GROUND && !allowed.contains(&used) {
                    problems.push(format!(
                        "{} uses `{used}`, which the row of `{module}` does not allow",
                        file.strip_prefix(root).unwrap_or(file).display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "layering broken:\n{}", problems.join("\n"));
}

#[test]
fn the_checker_sees_what_it_must() {
    // A checker that finds nothing would pass on any code: these must be found.
    let source = "use crate::log::PartitionLog;\nuse crate::{api::x, broker};\n// crate::config in a comment\nfn f() { crate::metrics::m(); }\n#[cfg(test)]\nmod tests { use crate::server; }\n";
    let used: Vec<String> = used_modules(source).into_iter().collect();
    assert_eq!(used, ["api", "broker", "log", "metrics"]);
    let mut layers = BTreeMap::new();
    layers.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    layers.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    layers.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_cycle(&layers), None);
    layers.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(find_cycle(&layers).is_some());
    let table = "x\n## Layers\n\n| module | uses |\n| --- | --- |\n| `api` | `broker`, `log` |\n| `log` | |\n\n## Next\n| `nope` | |\n";
    let stated = stated_layers(table);
    assert_eq!(stated.len(), 2);
    assert!(stated["api"].contains("broker") && stated["api"].contains("log"));
}

/// The error types in a `Result<_, E>` written in `source` (the last top-level argument
/// of each `Result<...>`), comments left out.
fn result_error_types(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(start) = rest.find("Result<") {
            let after = &rest[start + "Result<".len()..];
            let mut depth = 1;
            let mut last_comma = None;
            let mut end = None;
            for (index, c) in after.char_indices() {
                match c {
                    '<' | '(' | '[' => depth += 1,
                    '>' | ')' | ']' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(index);
                            break;
                        }
                    }
                    ',' if depth == 1 => last_comma = Some(index),
                    _ => {}
                }
            }
            let Some(end) = end else { break };
            if let Some(comma) = last_comma {
                found.push(after[comma + 1..end].trim().to_string());
            }
            rest = &after[end..];
        }
    }
    found
}

#[test]
fn a_kafka_error_code_is_never_a_bare_i16() {
    // ARCHITECTURE.md: a function that fails with a Kafka code returns ErrorCode.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut problems = Vec::new();
    for file in files {
        let source = std::fs::read_to_string(&file).expect("read a source file");
        if result_error_types(&source).iter().any(|error| error == "i16") {
            problems.push(file.strip_prefix(root).unwrap_or(&file).display().to_string());
        }
    }
    assert!(problems.is_empty(), "Result<_, i16> in: {}", problems.join(", "));
    assert_eq!(
        result_error_types(
            "fn f() -> Result<Vec<(i32, i16)>, i16> {} // Result<(), String>\nx: Result<u8, ErrorCode>"
        ),
        ["i16", "ErrorCode"]
    );
}
