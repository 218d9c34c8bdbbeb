//! The docs cannot rot: the plugin reference is the output of `ecomflow list --format
//! markdown`, every TOML block in the Markdown files validates, every relative link leads to
//! a file, and the README stays short.

use crate::common::{ecomflow, repo};
use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
use std::path::{Path, PathBuf};

/// README.md, ARCHITECTURE.md, CONTRIBUTING.md and every page under docs/.
fn markdown_files() -> Vec<PathBuf> {
    let root = repo();
    let mut files: Vec<PathBuf> = ["README.md", "ARCHITECTURE.md", "CONTRIBUTING.md"]
        .iter()
        .map(|f| root.join(f))
        .collect();
    let mut dirs = vec![root.join("docs")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("docs/") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The fenced blocks of `info` (such as `toml`) in a Markdown text, with their first line.
fn fenced_blocks(text: &str, info: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (event, range) in Parser::new(text).into_offset_iter() {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang)))
                if lang.split([',', ' ']).next() == Some(info) =>
            {
                let line = text[..range.start].lines().count() + 1;
                current = Some((line, String::new()));
            }
            Event::Text(t) => {
                if let Some((_, body)) = current.as_mut() {
                    body.push_str(&t);
                }
            }
            Event::End(TagEnd::CodeBlock) => blocks.extend(current.take()),
            _ => {}
        }
    }
    blocks
}

/// The link targets of a Markdown text.
fn links(text: &str) -> Vec<String> {
    Parser::new(text)
        .filter_map(|event| match event {
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. }) => {
                Some(dest_url.to_string())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_plugin_reference_is_generated_from_the_schemas() {
    let out = ecomflow()
        .args(["list", "--format", "markdown"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let generated = String::from_utf8(out.stdout).expect("utf8");
    let committed = read(&repo().join("docs/reference/plugins.md"));
    assert!(
        generated == committed,
        "docs/reference/plugins.md differs from `ecomflow list --format markdown`: \
         regenerate it with\n  cargo run -p ecomflow -- list --format markdown > docs/reference/plugins.md"
    );
    // Every built-in plugin and every option is on the page.
    let json = ecomflow()
        .args(["list", "--format", "json"])
        .output()
        .expect("runs");
    let all: serde_json::Value = serde_json::from_slice(&json.stdout).expect("json");
    for plugin in all.as_array().expect("a list") {
        let name = plugin["name"].as_str().expect("name");
        let heading = match plugin["kind"].as_str() {
            Some("table") => format!("### `[{name}]`"),
            kind => format!("### {} `{name}`", kind.unwrap_or_default()),
        };
        assert!(committed.contains(&heading), "{heading} is missing");
        for option in plugin["options"].as_array().expect("options") {
            let option = option["name"].as_str().expect("option name");
            assert!(
                committed.contains(&format!("| `{option}` |")),
                "{name}.{option} is missing"
            );
        }
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let path = entry?.path();
        let target = to.join(path.file_name().expect("name"));
        if path.is_dir() {
            copy_dir(&path, &target)?;
        } else {
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}

/// Checks one TOML block of the docs; `Err` says why it fails.
fn check_toml_block(body: &str, dir: &Path) -> Result<(), String> {
    let root = repo();
    if body.contains("[package]") || body.contains("[dependencies]") || body.contains("[workspace")
    {
        // A Cargo manifest: TOML, nothing more to check here.
        return toml::from_str::<toml::Table>(body)
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let mut cmd = ecomflow();
    cmd.arg("validate").current_dir(&root);
    let file = if body.contains("[[tests]]") {
        // A test file: beside the shipped pipelines it names (and what they refer to).
        for shipped in ["pipelines", "migrations", "elasticsearch"] {
            copy_dir(&root.join(shipped), &dir.join(shipped)).map_err(|e| e.to_string())?;
        }
        dir.join("pipelines/block.test.toml")
    } else {
        if !body
            .lines()
            .any(|l| l.trim_start().starts_with("[sources."))
        {
            // A fragment: an overlay on the flagship.
            cmd.arg(root.join("pipelines/ecommerce.toml"));
        }
        dir.join("block.toml")
    };
    std::fs::write(&file, body).map_err(|e| e.to_string())?;
    let out = cmd.arg(&file).output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn every_toml_block_in_the_docs_validates() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in markdown_files() {
        let text = read(&file);
        for (line, body) in fenced_blocks(&text, "toml") {
            let dir = tempfile::tempdir().expect("tempdir");
            checked += 1;
            if let Err(why) = check_toml_block(&body, dir.path()) {
                let shown = file
                    .strip_prefix(repo())
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                failures.push(format!(
                    "{shown}:{line}: the TOML block does not validate:\n{why}"
                ));
            }
        }
    }
    assert!(
        checked >= 10,
        "only {checked} TOML blocks found in the docs"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_broken_toml_block_is_caught() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broken = "[transforms.big]\ntype = \"filter\"\ninputs = [\"usd\"]\ncondition = \"total_amount_usd >\"\n";
    assert!(check_toml_block(broken, dir.path()).is_err());
    let unknown = "[sinks.out]\ntype = \"console\"\ninputs = [\"no_such_component\"]\n";
    assert!(check_toml_block(unknown, dir.path()).is_err());
}

#[test]
fn every_relative_link_leads_to_a_file() {
    let root = repo();
    let mut broken = Vec::new();
    for file in markdown_files() {
        for target in links(&read(&file)) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            let resolved = file.parent().expect("parent").join(path);
            if !resolved.exists() {
                let shown = file
                    .strip_prefix(&root)
                    .unwrap_or(&file)
                    .display()
                    .to_string();
                broken.push(format!("{shown}: link to {target}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "links to nothing:\n{}",
        broken.join("\n")
    );
}

#[test]
fn the_readme_is_short_and_starts_with_the_two_commands() {
    let readme = read(&repo().join("README.md"));
    let lines = readme.lines().count();
    assert!(lines <= 200, "README.md has {lines} lines (at most 200)");
    let first_block = fenced_blocks(&readme, "sh")
        .into_iter()
        .next()
        .map(|(_, body)| body)
        .unwrap_or_default();
    assert!(
        first_block.contains("run pipelines/ecommerce.toml")
            && first_block.contains("scripts/test.sh"),
        "the README's first shell block is not the two commands:\n{first_block}"
    );
    let ci = read(&repo().join(".ci/run"));
    assert!(
        ci.contains("scripts/test.sh"),
        ".ci/run does not run the README's test command"
    );
}

/// The methods a plugin implements or calls: every `fn` of the component files of the core
/// (the traits, the contexts, the emitter, a sink's batch), tests and conversions left out.
fn contract_methods() -> Vec<String> {
    let dir = repo().join("crates/ecomflow-core/src/component");
    let mut names = Vec::new();
    for file in [
        "transform.rs",
        "source.rs",
        "source_end.rs",
        "sink.rs",
        "in_checkpoint.rs",
    ] {
        let text = read(&dir.join(file));
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for line in code.lines() {
            let line = line.trim_start();
            let rest = ["pub async fn ", "pub fn ", "async fn ", "fn "]
                .iter()
                .find_map(|p| line.strip_prefix(p));
            let Some(rest) = rest else { continue };
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            // Conversions, and helpers private to a file.
            if !["from", "within", "new", "get"].contains(&name.as_str()) && !names.contains(&name)
            {
                names.push(name);
            }
        }
    }
    names
}

#[test]
fn the_plugin_guide_names_every_method_of_the_contract() {
    let methods = contract_methods();
    assert!(
        methods.len() > 50 && methods.iter().any(|m| m == "last_checkpoint"),
        "the core's files were read: {methods:?}"
    );
    let guide = read(&repo().join("docs/guides/writing-a-plugin.md"));
    // Every `...` span of the guide, split into the names it holds.
    let named: Vec<&str> = guide
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|span| span.split(|c: char| !(c.is_alphanumeric() || c == '_')))
        .collect();
    let missing: Vec<&String> = methods
        .iter()
        .filter(|m| !named.contains(&m.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/guides/writing-a-plugin.md never names {missing:?}"
    );
}

#[test]
fn the_examples_plugins_are_as_short_as_the_guide_says() {
    let guide = read(&repo().join("docs/guides/writing-a-plugin.md"));
    for (file, most) in [("mask", 40), ("sequence", 80), ("lines", 50)] {
        let path = repo().join(format!("examples/ecomflow-plugin-example/src/{file}.rs"));
        let text = read(&path);
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let lines = code
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("//"))
            .count();
        assert!(
            lines <= most,
            "{file}.rs: {lines} lines of code, at most {most}"
        );
        let row = format!("src/{file}.rs) | ");
        let said = guide
            .lines()
            .find(|l| l.contains(&row))
            .unwrap_or_else(|| panic!("the guide has a row for {file}.rs"));
        assert!(
            said.trim_end().ends_with(&format!("| {lines} |")),
            "the guide says {said:?}, the file has {lines} lines of code"
        );
    }
}
