//! The OpenAPI 3.1 document of the API, built from the endpoints' declarations
//! ([`super::endpoints`]) and served at `GET /api/v1/openapi.json`; `docs/api/openapi.json`
//! is the same document, committed (a test fails when it differs, `UPDATE_OPENAPI=1`
//! rewrites it).
//!
//! Why built here and not with a framework: see `docs/decisions/0011-openapi-from-the-route-table.md`.
//! In short, the schemas come from the same `schemars` derives the contracts use (JSON
//! Schema 2020-12, OpenAPI 3.1's own dialect, so they are used unchanged under
//! `#/components/schemas`), and the paths from the list the router is built from.
//!
//! Two generators: request bodies and query parameters are described as the API reads them
//! (serde's deserialising view: defaults make fields optional), answers as it writes them
//! (the serialising view). A type described both ways must come out the same, or the
//! document is refused by a test ([`document`] reports the clash).
//!
//! The refusals each operation lists follow from its declaration: path, query, header or
//! body input → 400; staff → 401 and 403; a customer → 401; a body → 413; `If-Match` →
//! 412; `Idempotency-Key` → 422; a declared 404; and 429 and 503 everywhere. An answer that
//! may be `304 Not Modified` (a PDF) says so, with `If-None-Match`.

use std::sync::LazyLock;

use schemars::{JsonSchema, Schema, SchemaGenerator, generate::SchemaSettings, json_schema};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::Problem;
use super::auth::Anonymous;
use super::endpoint::{Access, AnswerHeader, Content, Endpoint, Reply, RequestHeader};
use super::problem::ProblemDetails;

/// The document, built once.
static DOCUMENT: LazyLock<Document> = LazyLock::new(|| document(&super::endpoints()));

/// An OpenAPI document. A struct rather than a JSON map so that its top-level fields come
/// out in the order a reader expects (within them, keys are sorted).
#[derive(Debug, Serialize)]
pub(crate) struct Document {
    openapi: &'static str,
    info: Value,
    tags: Value,
    paths: Value,
    components: Value,
    /// Schema names two types (or two views of one type) would define differently: a bug
    /// the tests report.
    #[serde(rename = "x-schema-clashes", skip_serializing_if = "Vec::is_empty")]
    clashes: Vec<String>,
}

/// The document as `docs/api/openapi.json` holds it: pretty, with a final newline.
pub(crate) fn pretty() -> String {
    let mut text = serde_json::to_string_pretty(&*DOCUMENT).unwrap_or_default();
    text.push('\n');
    text
}

/// The OpenAPI document, as served.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(transparent)]
pub(crate) struct OpenApiDocument(&'static Document);

impl JsonSchema for OpenApiDocument {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OpenApiDocument".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "An OpenAPI 3.1 document: this one.",
            "type": "object",
            "properties": {
                "openapi": { "type": "string" },
                "info": { "type": "object" },
                "paths": { "type": "object" }
            },
            "required": ["openapi", "info", "paths"]
        })
    }
}

/// `GET /api/v1/openapi.json`: this document (no token needed).
pub(crate) async fn serve(_: Anonymous) -> Result<Reply<OpenApiDocument>, Problem> {
    Ok(Reply::new(OpenApiDocument(&DOCUMENT)))
}

/// Where component schemas live, and the settings both generators share: JSON Schema
/// 2020-12, as OpenAPI 3.1 reads it.
fn settings() -> SchemaSettings {
    SchemaSettings::draft2020_12().with(|s| {
        s.definitions_path = "/components/schemas".into();
        s.meta_schema = None;
    })
}

/// The document of `endpoints`. A schema name that two types (or two views of one type)
/// would define differently is a bug, reported in the document's `x-schema-clashes` so
/// that the drift test (and the unit test) fail naming it.
pub(crate) fn document(endpoints: &[Endpoint]) -> Document {
    let mut requests = settings().for_deserialize().into_generator();
    let mut answers = settings().for_serialize().into_generator();
    let problem = answers.subschema_for::<ProblemDetails>();
    let mut paths = Map::new();
    let mut tags: Vec<&str> = Vec::new();
    for endpoint in endpoints {
        if !tags.contains(&endpoint.doc.tag) {
            tags.push(endpoint.doc.tag);
        }
        let operation = operation(endpoint, &mut requests, &mut answers);
        if let Value::Object(item) = paths
            .entry(endpoint.path)
            .or_insert_with(|| Value::Object(Map::new()))
        {
            item.insert(endpoint.method.as_str().to_lowercase(), operation);
        }
    }
    let (mut schemas, clashes) = merge(
        requests.take_definitions(true),
        answers.take_definitions(true),
    );
    // A JSON-lines export's line: not a body or answer of its own, described for the
    // integrators who validate what they read.
    schemas.insert(
        "ExportLine".to_owned(),
        crate::domain::export::line_schema(),
    );
    Document {
        openapi: "3.1.0",
        info: json!({
            "title": "Orderly admin API",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Orders, staff actions as commands, and the audit log, for operators; a storefront customer's own orders, invoices and cancellation requests.",
            "description": INFO,
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        }),
        tags: tags
            .iter()
            .map(|t| json!({ "name": t, "description": tag_description(t) }))
            .collect(),
        paths: Value::Object(paths),
        components: json!({
            "schemas": schemas,
            "securitySchemes": {
                "staffToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A staff member's API token (`oly_…`), issued by `orderly staff token`: opaque, expiring, revocable, limited to the member's role and stores."
                },
                "customerToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "ocu_<base64url(claims)>.<base64url(HMAC-SHA256)>",
                    "description": "A storefront's customer token, which the storefront mints for its signed-in customer with its store's secret (`orderly store-secret rotate`): `ocu_<base64url(claims)>.<base64url(HMAC-SHA256(key = secret, message = \"ocu_<base64url(claims)>\"))>`, base64url without padding, the claims a JSON object with exactly `store`, `customer`, `iat`, `exp` (Unix seconds, at most 3600 apart) and optionally `email`. It shows that store's orders of that customer only (not marketplace orders). Every token that does not authenticate gets the same 401. See `docs/api.md` (Customers' orders)."
                }
            },
            "parameters": {
                "Idempotency-Key": {
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "description": "Makes the action safe to retry: the same key (per staff member; for a customer, per customer of the store) with the same request answers with the first command (or bulk job) and sends nothing again; with another request it is 422.",
                    "schema": { "type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[!-~]{1,255}$" }
                },
                "If-Match": {
                    "name": "If-Match",
                    "in": "header",
                    "required": false,
                    "description": "The order's `ETag` (its status sequence) as last seen, or `*`. If the order has moved on, the answer is 412 and nothing is sent.",
                    "schema": { "type": "string", "examples": ["\"7\""] }
                },
                "If-None-Match": {
                    "name": "If-None-Match",
                    "in": "header",
                    "required": false,
                    "description": "The PDF's `ETag` as last downloaded (or `*`): if it is still the document, the answer is 304 without a body.",
                    "schema": { "type": "string" }
                }
            },
            "headers": {
                "ETag": {
                    "description": "The order's status sequence, quoted: send it as `If-Match` with an action.",
                    "schema": { "type": "string", "examples": ["\"7\""] }
                },
                "Location": {
                    "description": "The command's own URL (`/api/v1/admin/commands/{id}`; for a customer's, `/api/v1/store/customer-commands/{id}`).",
                    "schema": { "type": "string" }
                },
                "DocumentETag": {
                    "description": "The PDF's SHA-256 (hex), quoted: the `pdf_sha256` its event announced. Send it as `If-None-Match` for a 304.",
                    "schema": { "type": "string", "pattern": "^\"[0-9a-f]{64}\"$" }
                },
                "Content-Length": {
                    "description": "The PDF's size in bytes.",
                    "schema": { "type": "integer", "minimum": 0 }
                },
                "Content-Disposition": {
                    "description": "`inline; filename=\"<number>.pdf\"` (the document's number, with characters other than letters, digits, `-`, `_` and `.` made `_`).",
                    "schema": { "type": "string" }
                },
                "Cache-Control": {
                    "description": "`private, no-cache`: a browser may keep it, and asks with `If-None-Match` before using it again.",
                    "schema": { "type": "string" }
                },
                "Retry-After": {
                    "description": "Seconds to wait before trying again (a whole number, at least 1).",
                    "schema": { "type": "integer", "minimum": 1 }
                },
                "WWW-Authenticate": {
                    "description": "`Bearer realm=\"orderly\"`.",
                    "schema": { "type": "string" }
                }
            },
            "responses": refusals(&problem)
        }),
        clashes,
    }
}

const INFO: &str = "The operators' API of Orderly, answered from the api worker's own read model of \
the orders' events (what it shows lags the events by milliseconds), and the storefronts' \
customers' view of their own orders (`/api/v1/store/…`, with a customer token). Staff \
actions and a customer's cancellation request are commands: each sends a request message to \
the worker that owns the order and answers `202` with a command resource that moves to \
`applied`, `partially_applied`, `refused` or `duplicate`.\n\nEvery refusal is `application/problem+json` (RFC 9457) naming the parameter \
or body field at fault in `field`; an unknown path is 404 and a wrong method 405, in the \
same form. Requests are rate-limited per token, and requests that do not authenticate per \
client address: over the limit the answer is 429 with `Retry-After`. See `docs/api.md`.";

fn tag_description(tag: &str) -> &'static str {
    match tag {
        "orders" => "The order list and an order's detail, from the read model.",
        "actions" => "Staff actions on an order: each becomes a command.",
        "exceptions" => "Order item exceptions: imported lines that matched no product.",
        "setups" => "Setups of service products: their stages, status and history.",
        "commands" => "What became of an action.",
        "audit" => "Every staff action, with who, from where and its outcome.",
        "documents" => "Invoice and credit-note PDFs, from the document store.",
        "customers" => "A customer's order statistics in a store, for staff.",
        "storefront" => {
            "A storefront's customer's own orders, their PDFs and cancellation requests, with a customer token."
        }
        "meta" => "About the API itself.",
        _ => "",
    }
}

/// `requests`' and `answers`' definitions together, and the names they define differently.
fn merge(
    requests: Map<String, Value>,
    answers: Map<String, Value>,
) -> (Map<String, Value>, Vec<String>) {
    let mut schemas = requests;
    let mut clashes = Vec::new();
    for (name, schema) in answers {
        match schemas.get(&name) {
            Some(existing) if *existing != schema => clashes.push(name),
            Some(_) => {}
            None => {
                schemas.insert(name, schema);
            }
        }
    }
    (schemas, clashes)
}

/// One operation object.
fn operation(
    endpoint: &Endpoint,
    requests: &mut SchemaGenerator,
    answers: &mut SchemaGenerator,
) -> Value {
    let doc = &endpoint.doc;
    let mut description = doc.description.to_owned();
    let mut parameters: Vec<Value> = Vec::new();
    for (name, what) in &doc.path_params {
        parameters.push(json!({
            "name": name,
            "in": "path",
            "required": true,
            "description": what,
            "schema": { "type": "string", "format": "uuid" }
        }));
    }
    for parameter in &doc.query {
        parameters.push(json!({
            "name": parameter.name,
            "in": "query",
            "required": false,
            "description": parameter.description,
            "schema": (parameter.schema)(requests)
        }));
    }
    for header in &doc.headers {
        let name = match header {
            RequestHeader::IdempotencyKey => "Idempotency-Key",
            RequestHeader::IfMatch => "If-Match",
            RequestHeader::IfNoneMatch => "If-None-Match",
        };
        parameters.push(json!({ "$ref": format!("#/components/parameters/{name}") }));
    }

    let mut success = json!({ "description": success_description(doc.answer.status) });
    match (doc.answer.content)(answers) {
        Content::Json(schema) => {
            success["content"] = json!({ "application/json": { "schema": schema } });
        }
        Content::Binary(media_type) => {
            success["content"] = json!({
                media_type: { "schema": { "type": "string", "contentMediaType": media_type } }
            });
        }
    }
    if !doc.answer.headers.is_empty() {
        success["headers"] = Value::Object(headers(doc.answer.headers.iter()));
    }

    let mut responses = Map::new();
    responses.insert(doc.answer.status.to_string(), success);
    if doc.answer.conditional {
        let etag = headers(doc.answer.headers.iter().filter(|h| h.names().0 == "ETag"));
        responses.insert(
            "304".to_owned(),
            json!({
                "description": "Not modified: `If-None-Match` names the current `ETag`; no body.",
                "headers": etag
            }),
        );
    }
    let refuse = |responses: &mut Map<String, Value>, status: u16, name: &str| {
        responses.insert(
            status.to_string(),
            json!({ "$ref": format!("#/components/responses/{name}") }),
        );
    };
    let takes_input = !parameters.is_empty() || doc.body.is_some();
    if takes_input {
        refuse(&mut responses, 400, "BadRequest");
    }
    match doc.access {
        Access::Public => {}
        Access::Staff(permission) => {
            refuse(&mut responses, 401, "Unauthenticated");
            refuse(&mut responses, 403, "Forbidden");
            description.push_str(&format!("\n\nNeeds the permission `{permission}`."));
        }
        Access::Customer => {
            refuse(&mut responses, 401, "CustomerUnauthenticated");
            description.push_str(
                "\n\nNeeds a customer token: only the token's customer's own orders of its store.",
            );
        }
    }
    if let Some(what) = doc.not_found {
        responses.insert(
            "404".to_owned(),
            json!({
                "description": what,
                "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
            }),
        );
    }
    for (status, what) in &doc.refusals {
        responses.insert(
            status.to_string(),
            json!({
                "description": what,
                "content": { "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } } }
            }),
        );
    }
    if doc.headers.contains(&RequestHeader::IfMatch) {
        refuse(&mut responses, 412, "PreconditionFailed");
    }
    if doc.body.is_some() {
        refuse(&mut responses, 413, "TooLarge");
    }
    if doc.headers.contains(&RequestHeader::IdempotencyKey) {
        refuse(&mut responses, 422, "KeyReused");
    }
    refuse(&mut responses, 429, "TooManyRequests");
    refuse(&mut responses, 503, "Unavailable");

    let mut operation = json!({
        "operationId": doc.operation_id,
        "tags": [doc.tag],
        "summary": doc.summary,
        "description": description,
        "responses": responses,
    });
    if !parameters.is_empty() {
        operation["parameters"] = Value::Array(parameters);
    }
    if let Some(body) = doc.body {
        operation["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": body(requests) } }
        });
    }
    match doc.access {
        Access::Public => operation["security"] = json!([]),
        Access::Staff(permission) => {
            operation["security"] = json!([{ "staffToken": [] }]);
            operation["x-permission"] = json!(permission.as_str());
        }
        Access::Customer => operation["security"] = json!([{ "customerToken": [] }]),
    }
    operation
}

/// The `headers` of an answer: each header's name, referring to its description in
/// `components.headers`.
fn headers<'a>(which: impl Iterator<Item = &'a AnswerHeader>) -> Map<String, Value> {
    which
        .map(|h| {
            let (name, component) = h.names();
            (
                name.to_owned(),
                json!({ "$ref": format!("#/components/headers/{component}") }),
            )
        })
        .collect()
}

fn success_description(status: u16) -> &'static str {
    match status {
        202 => "Accepted: the command, `pending` until the owning worker answers.",
        _ => "OK",
    }
}

/// The shared refusals (`#/components/responses`), each a problem.
fn refusals(problem: &Schema) -> Value {
    let answer = |description: &str, headers: &[&str]| {
        let mut response = json!({
            "description": description,
            "content": { "application/problem+json": { "schema": problem } }
        });
        if !headers.is_empty() {
            response["headers"] = headers
                .iter()
                .map(|h| {
                    (
                        (*h).to_owned(),
                        json!({ "$ref": format!("#/components/headers/{h}") }),
                    )
                })
                .collect::<Map<String, Value>>()
                .into();
        }
        response
    };
    json!({
        "BadRequest": answer("A parameter, header or body field is wrong (`field` names it), an unknown one was given, or the body is not a JSON object.", &[]),
        "Unauthenticated": answer("No token, or one that is unknown, expired or revoked (the same answer for all).", &["WWW-Authenticate"]),
        "CustomerUnauthenticated": answer("No customer token, or one that is malformed, not signed by a current secret of its store, tampered with or expired, or a staff token (the same answer for all).", &["WWW-Authenticate"]),
        "Forbidden": answer("The token's role does not grant the permission (checked before anything is looked up).", &[]),
        "PreconditionFailed": answer("`If-Match` names an older state of the order: nothing was sent; reload it and decide again.", &[]),
        "TooLarge": answer("The body is larger than the API takes (`[api] max_body_bytes`).", &[]),
        "KeyReused": answer("The `Idempotency-Key` was used for another request.", &[]),
        "TooManyRequests": answer("Over the rate limit of the token or, for a request that does not authenticate, of the client's address (an address over its limit is refused whatever token it sends): wait `Retry-After` seconds.", &["Retry-After"]),
        "Unavailable": answer("A failure that is ours (logged with its cause): try again after `Retry-After` seconds.", &["Retry-After"])
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn as_json() -> Value {
        serde_json::to_value(&*DOCUMENT).expect("serialisable")
    }

    #[test]
    fn every_schema_name_means_one_thing() {
        assert!(
            DOCUMENT.clashes.is_empty(),
            "schemas defined differently for reading and answering: {:?}",
            DOCUMENT.clashes
        );
    }

    #[test]
    fn operation_ids_are_unique_and_every_path_parameter_is_described() {
        let mut ids = BTreeSet::new();
        for endpoint in super::super::endpoints() {
            assert!(!endpoint.doc.operation_id.is_empty(), "{}", endpoint.path);
            assert!(
                ids.insert(endpoint.doc.operation_id),
                "{} twice",
                endpoint.doc.operation_id
            );
            let in_path: Vec<&str> = endpoint
                .path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            let described: Vec<&str> = endpoint.doc.path_params.iter().map(|(n, _)| *n).collect();
            assert_eq!(in_path, described, "{}", endpoint.path);
        }
    }

    #[test]
    fn every_reference_resolves() {
        fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
            match value {
                Value::Object(map) => {
                    if let Some(Value::String(r)) = map.get("$ref") {
                        out.push(r);
                    }
                    map.values().for_each(|v| refs(v, out));
                }
                Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let document = as_json();
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let pointer = r.strip_prefix('#').unwrap_or(r);
            assert!(document.pointer(pointer).is_some(), "{r} does not resolve");
        }
    }

    #[test]
    fn actions_describe_the_body_their_handler_parses() {
        let document = as_json();
        let body = &document["paths"]["/api/v1/admin/orders/{id}/cancel"]["post"]["requestBody"];
        assert_eq!(
            body["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CancelRequest"
        );
        let schema = &document["components"]["schemas"]["CancelRequest"];
        assert_eq!(schema["required"], json!(["reason"]));
        assert_eq!(schema["additionalProperties"], json!(false));
        let accepted =
            &document["paths"]["/api/v1/admin/orders/{id}/cancel"]["post"]["responses"]["202"];
        assert!(accepted["headers"]["Location"].is_object(), "{accepted}");
    }

    #[test]
    fn a_pdf_is_described_as_bytes_with_its_headers_and_its_304() {
        let document = as_json();
        for path in [
            "/api/v1/admin/orders/{id}/documents/{document_id}",
            "/api/v1/store/customer-orders/{id}/documents/{document_id}",
        ] {
            let operation = &document["paths"][path]["get"];
            let ok = &operation["responses"]["200"];
            assert_eq!(
                ok["content"]["application/pdf"]["schema"]["contentMediaType"], "application/pdf",
                "{path}"
            );
            assert_eq!(
                ok["headers"]["ETag"]["$ref"],
                "#/components/headers/DocumentETag"
            );
            assert!(ok["headers"]["Content-Length"].is_object(), "{ok}");
            let not_modified = &operation["responses"]["304"];
            assert!(not_modified["headers"]["ETag"].is_object(), "{operation}");
            assert!(not_modified.get("content").is_none());
            let parameters = operation["parameters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            assert!(
                parameters
                    .iter()
                    .any(|p| p["$ref"] == "#/components/parameters/If-None-Match"),
                "{path}"
            );
        }
    }

    #[test]
    fn the_storefront_paths_need_a_customer_token_and_nothing_else_does() {
        let document = as_json();
        let mut customers = 0;
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let store = path.starts_with("/api/v1/store/");
                let customer = operation["security"] == json!([{ "customerToken": [] }]);
                assert_eq!(customer, store, "{method} {path}");
                if customer {
                    customers += 1;
                    let responses = &operation["responses"];
                    assert_eq!(
                        responses["401"]["$ref"],
                        "#/components/responses/CustomerUnauthenticated"
                    );
                    assert!(responses.get("403").is_none(), "{method} {path}");
                }
            }
        }
        assert_eq!(
            customers, 6,
            "list, detail, PDF, cancellation, command, stats"
        );
        let cancel = &document["paths"]["/api/v1/store/customer-orders/{id}/cancel"]["post"];
        assert_eq!(
            cancel["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/CancelRequest",
            "the staff's cancellation body"
        );
        assert!(cancel["responses"]["202"]["headers"]["Location"].is_object());
        assert!(
            document["components"]["securitySchemes"]["customerToken"]["description"]
                .as_str()
                .is_some_and(|d| d.contains("ocu_"))
        );
    }
}
