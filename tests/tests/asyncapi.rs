//! The committed AsyncAPI document (`docs/contracts/asyncapi.json`, kept equal to the code
//! by the contracts tests) is valid for the official AsyncAPI parser, as the tools
//! integrators use will read it. The parser is a Node package (there is no maintained Rust
//! one); `scripts/services` installs it into `tools/asyncapi` from its lock file.

use std::path::Path;
use std::process::Command;

#[test]
fn the_asyncapi_document_is_valid_for_the_official_parser() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let parser = root.join("tools/asyncapi/node_modules/@asyncapi/parser");
    assert!(
        parser.is_dir(),
        "the AsyncAPI parser is not installed: run scripts/services (npm ci in tools/asyncapi)"
    );
    let output = Command::new("node")
        .arg(root.join("tools/asyncapi/validate.mjs"))
        .arg(root.join("docs/contracts/asyncapi.json"))
        .output()
        .expect("node runs (scripts/services installs it)");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{report}");
    assert!(report.contains("valid AsyncAPI 3.0.0"), "{report}");
}
