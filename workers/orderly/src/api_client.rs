//! `orderly orders export` and `orderly orders bulk`: the admin API driven from a shell with
//! a staff token (`--api`/`ORDERLY_API_URL`, `--token`/`ORDERLY_API_TOKEN`).
//!
//! Why over HTTP rather than straight from the database: an export or a bulk action from
//! the command line is then exactly the API's, with the token's role, its stores and the
//! audit log, and the same filters the list takes; the CLI adds nothing of its own but the
//! way the filter is written (the list's query string) and waiting for a job to finish.

use std::time::Duration;

use anyhow::Context;
use serde_json::{Map, Value, json};
use std::io::Write as _;
use uuid::Uuid;

/// The filter parameters that take a list (the rest take one value).
const LIST_FILTERS: [&str; 3] = ["store", "channel", "status"];

/// Where the API is and who is asking.
#[derive(Debug, Clone)]
pub(crate) struct Remote {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Remote {
    pub(crate) fn new(base: &str, token: &str) -> anyhow::Result<Self> {
        let base = base.trim_end_matches('/').to_owned();
        anyhow::ensure!(
            base.starts_with("http://") || base.starts_with("https://"),
            "--api must be the API's address, like http://127.0.0.1:8081 (got `{base}`)"
        );
        anyhow::ensure!(
            !token.is_empty(),
            "--token (or ORDERLY_API_TOKEN) is required"
        );
        Ok(Self {
            base,
            token: token.to_owned(),
            http: reqwest::Client::new(),
        })
    }

    async fn get(&self, path: &str) -> anyhow::Result<reqwest::Response> {
        let url = format!("{}{path}", self.base);
        self.http
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach the API at {url}"))
    }
}

/// What `export` writes.
#[derive(Debug, Clone, Default)]
pub(crate) struct ExportShape {
    pub(crate) format: Option<String>,
    pub(crate) rows: Option<String>,
    pub(crate) columns: Option<String>,
}

/// Writes the export of the orders the list shows for `filter` (its query string) to
/// standard output, as it arrives.
pub(crate) async fn export(
    remote: &Remote,
    filter: &str,
    shape: &ExportShape,
) -> anyhow::Result<()> {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for (name, value) in url::form_urlencoded::parse(filter.trim_start_matches('?').as_bytes()) {
        query.append_pair(&name, &value);
    }
    for (name, value) in [
        ("format", &shape.format),
        ("rows", &shape.rows),
        ("columns", &shape.columns),
    ] {
        if let Some(value) = value {
            query.append_pair(name, value);
        }
    }
    let mut response = remote
        .get(&format!("/api/v1/admin/orders/export?{}", query.finish()))
        .await?;
    if !response.status().is_success() {
        anyhow::bail!(problem(response).await);
    }
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = response.chunk().await.context("the export broke off")? {
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(())
}

/// A bulk request as the command line gives it.
#[derive(Debug, Clone)]
pub(crate) struct BulkArgs {
    pub(crate) action: String,
    /// The action's body, as JSON.
    pub(crate) params: String,
    /// The list's filters as a query string.
    pub(crate) filter: Option<String>,
    pub(crate) ids: Vec<Uuid>,
    pub(crate) dry_run: bool,
    pub(crate) idempotency_key: Option<String>,
    /// Wait until every order is sent and answered, printing progress to standard error.
    pub(crate) wait: bool,
}

/// Creates the bulk job; prints it (once finished, with `wait`) as JSON.
pub(crate) async fn bulk(remote: &Remote, args: &BulkArgs) -> anyhow::Result<()> {
    let body = bulk_body(args)?;
    let url = format!("{}/api/v1/admin/orders/bulk", remote.base);
    let mut request = remote
        .http
        .post(&url)
        .bearer_auth(&remote.token)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&body)?);
    if let Some(key) = &args.idempotency_key {
        request = request.header("Idempotency-Key", key);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach the API at {url}"))?;
    if response.status().as_u16() != 202 {
        anyhow::bail!(problem(response).await);
    }
    let body = response.bytes().await?;
    let mut job: Value = serde_json::from_slice(&body)?;
    if args.wait {
        let path = job["links"]["self"].as_str().unwrap_or_default().to_owned();
        loop {
            let p = &job["progress"];
            eprintln!(
                "{}: {} of {} sent or skipped, {} applied, {} refused, {} awaiting an answer",
                job["state"].as_str().unwrap_or("?"),
                p["total"].as_i64().unwrap_or(0) - p["pending"].as_i64().unwrap_or(0),
                p["total"],
                p["applied"],
                p["refused"],
                p["awaiting_answer"],
            );
            if job["state"] != "running" && p["awaiting_answer"] == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
            let response = remote.get(&path).await?;
            if !response.status().is_success() {
                anyhow::bail!(problem(response).await);
            }
            let body = response.bytes().await?;
            job = serde_json::from_slice(&body)?;
        }
    }
    println!("{}", serde_json::to_string_pretty(&job)?);
    Ok(())
}

/// The bulk request's body: the action, its parameters, and the filter (as the JSON object
/// the API takes) or the ids.
fn bulk_body(args: &BulkArgs) -> anyhow::Result<Value> {
    let params: Value = serde_json::from_str(&args.params)
        .with_context(|| format!("--params is not JSON: {}", args.params))?;
    let mut body = json!({ "action": args.action, "params": params, "dry_run": args.dry_run });
    match (&args.filter, args.ids.is_empty()) {
        (Some(filter), true) => body["filter"] = Value::Object(filter_object(filter)),
        (None, false) => body["order_ids"] = json!(args.ids),
        _ => anyhow::bail!("give either --filter or --ids"),
    }
    Ok(body)
}

/// The list's query string (`store=shop-de&status=processing,backordered`) as the JSON
/// object a bulk request's `filter` is: lists for `store`, `channel` and `status`.
fn filter_object(query: &str) -> Map<String, Value> {
    let mut object = Map::new();
    for (name, value) in url::form_urlencoded::parse(query.trim_start_matches('?').as_bytes()) {
        let name = name.into_owned();
        if LIST_FILTERS.contains(&name.as_str()) {
            let items = object
                .entry(name)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = items {
                items.extend(
                    value
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_owned())),
                );
            }
        } else {
            object.insert(name, Value::String(value.into_owned()));
        }
    }
    object
}

/// A refusal as one line: status, title, detail.
async fn problem(response: reqwest::Response) -> String {
    let status = response.status();
    let body: Value = match response.bytes().await {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        Err(_) => Value::Null,
    };
    match body["detail"].as_str() {
        Some(detail) => format!(
            "{status} {}: {detail}",
            body["title"].as_str().unwrap_or_default()
        ),
        None => format!("{status}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_string_filter_becomes_the_bulk_filter_object() {
        let object =
            filter_object("?store=shop-de&status=processing,backordered&status=on_hold&q=Anna%20M");
        assert_eq!(
            Value::Object(object),
            json!({"store": ["shop-de"], "status": ["processing", "backordered", "on_hold"],
                   "q": "Anna M"})
        );
    }

    #[test]
    fn a_bulk_body_has_a_filter_or_ids_never_both() {
        let args = BulkArgs {
            action: "hold".into(),
            params: r#"{"reason": "check"}"#.into(),
            filter: Some("store=shop-de".into()),
            ids: Vec::new(),
            dry_run: true,
            idempotency_key: None,
            wait: false,
        };
        let body = bulk_body(&args).expect("a body");
        assert_eq!(body["filter"], json!({"store": ["shop-de"]}));
        assert_eq!(body["dry_run"], true);
        let both = BulkArgs {
            ids: vec![Uuid::nil()],
            ..args.clone()
        };
        assert!(bulk_body(&both).is_err());
        let bad = BulkArgs {
            params: "reason".into(),
            ..args
        };
        assert!(
            bulk_body(&bad)
                .expect_err("not JSON")
                .to_string()
                .contains("--params")
        );
    }
}
