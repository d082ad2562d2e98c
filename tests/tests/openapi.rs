//! The admin API's OpenAPI document, as integrators get it.
//!
//! - The committed document (`docs/api/openapi.json`, kept equal to the code by the api
//!   crate's drift test) is valid for a real OpenAPI 3.1 validator: `@readme/openapi-parser`
//!   (the OpenAPI 3.1 schema, references, unique operation ids, declared path parameters)
//!   and Ajv in JSON Schema 2020-12 mode (every schema compiles). They are Node packages
//!   (there is no maintained Rust validator); `scripts/services` installs them into
//!   `tools/openapi` from its lock file.
//! - The running API serves that same document at `/api/v1/openapi.json` without a token,
//!   and routes every operation it lists: a staff or customer operation answers 401 without
//!   a token (not the 404 or 405 of a path or method the router does not know), as the
//!   problem its security scheme's 401 describes.

use std::path::Path;

use orderly_runtime::testing::World;
use serde_json::Value;

fn root() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn the_openapi_document_is_valid_for_an_openapi_3_1_validator() {
    let (valid, report) =
        orderly_tests::node_validator("openapi", "@readme/openapi-parser", "docs/api/openapi.json");
    assert!(valid, "{report}");
    assert!(report.contains("valid OpenAPI 3.1.0"), "{report}");
}

#[tokio::test]
async fn the_api_serves_the_committed_document_and_routes_every_operation_in_it()
-> anyhow::Result<()> {
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("docs/api/openapi.json"),
    )?)?;
    let world = World::new().await?;
    let mut host = world.host();
    let api = orderly_api::start(&mut host, orderly_api::ApiSettings::default()).await?;
    let http = reqwest::Client::new();
    let result = async {
        let served = http
            .get(format!("http://{api}/api/v1/openapi.json"))
            .send()
            .await?;
        anyhow::ensure!(served.status() == 200, "{}", served.status());
        anyhow::ensure!(
            served
                .headers()
                .get("content-type")
                .is_some_and(|v| v == "application/json"),
            "{:?}",
            served.headers()
        );
        let served: Value = serde_json::from_slice(&served.bytes().await?)?;
        anyhow::ensure!(
            served == committed,
            "the served document is not docs/api/openapi.json"
        );

        let paths = committed["paths"]
            .as_object()
            .ok_or_else(|| anyhow::anyhow!("no paths"))?;
        let mut checked = 0;
        let mut customers = 0;
        for (template, item) in paths {
            let path = template
                .replace("{id}", &uuid::Uuid::now_v7().to_string())
                .replace("{document_id}", &uuid::Uuid::now_v7().to_string());
            let operations = item
                .as_object()
                .ok_or_else(|| anyhow::anyhow!("{template}: not an object"))?;
            for (method, operation) in operations {
                let public = operation["security"] == serde_json::json!([]);
                let customer = operation["security"] == serde_json::json!([{"customerToken": []}]);
                let request = http.request(
                    method.to_uppercase().parse()?,
                    format!("http://{api}{path}"),
                );
                let answer = request.send().await?;
                let status = answer.status().as_u16();
                let expected = if public { 200 } else { 401 };
                let problem_json = answer
                    .headers()
                    .get("content-type")
                    .is_some_and(|v| v == "application/problem+json");
                anyhow::ensure!(
                    status == expected && (public || problem_json),
                    "{method} {template}: {status} without a token, expected {expected}: {}",
                    answer.text().await?
                );
                checked += 1;
                customers += usize::from(customer);
            }
        }
        anyhow::ensure!(checked >= 20, "only {checked} operations");
        anyhow::ensure!(
            customers == 6,
            "{customers} customer operations: list, detail, PDF, cancellation, command, stats"
        );

        // And what the document does not list is the router's 404, not a route.
        let unknown = http
            .get(format!("http://{api}/api/v1/admin/customers"))
            .send()
            .await?;
        anyhow::ensure!(unknown.status() == 404, "{}", unknown.status());
        Ok(())
    }
    .await;
    host.stop(std::time::Duration::from_secs(5)).await;
    world.cleanup().await?;
    result
}
