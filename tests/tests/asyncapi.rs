//! The committed AsyncAPI document (`docs/contracts/asyncapi.json`, kept equal to the code
//! by the contracts tests) is valid for the official AsyncAPI parser, as the tools
//! integrators use will read it. The parser is a Node package (there is no maintained Rust
//! one); `scripts/services` installs it into `tools/asyncapi` from its lock file.

#[test]
fn the_asyncapi_document_is_valid_for_the_official_parser() {
    let (valid, report) = orderly_tests::node_validator(
        "asyncapi",
        "@asyncapi/parser",
        "docs/contracts/asyncapi.json",
    );
    assert!(valid, "{report}");
    assert!(report.contains("valid AsyncAPI 3.0.0"), "{report}");
}
