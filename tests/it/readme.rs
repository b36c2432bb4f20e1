//! The README's quickstart must stay the compiled example `examples/quickstart.rs`.
#[test]
fn readme_quickstart_is_the_compiled_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/examples/quickstart.rs")).unwrap();
    let start = readme
        .find("```rust\n")
        .expect("a rust block in the README")
        + "```rust\n".len();
    let block = &readme[start..start + readme[start..].find("```").unwrap()];
    let code: String = example
        .lines()
        .skip_while(|l| l.starts_with("//!") || l.is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        block.trim(),
        code.trim(),
        "README quickstart and examples/quickstart.rs differ"
    );
}
