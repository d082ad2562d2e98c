//! The committed OpenAPI document (`docs/api/openapi.json`) is the one the API serves: it is
//! generated from the endpoints' declarations and fails here when it differs. Run with
//! `UPDATE_OPENAPI=1` to rewrite it, then review and commit the diff.

use std::path::Path;

const REGENERATE: &str = "UPDATE_OPENAPI=1 cargo test -p orderly-api --test openapi";

#[test]
fn the_committed_openapi_document_is_the_generated_one() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/api/openapi.json");
    let generated = orderly_api::openapi_json();
    if std::env::var("UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("docs/api has a parent"))
            .expect("create docs/api");
        std::fs::write(&path, &generated).expect("write docs/api/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/api/openapi.json differs from the document the API generates \
         (an endpoint, a parameter or a type changed); run `{REGENERATE}` and review the diff"
    );
}
