//! The committed contract documents stay true.
//!
//! - Every schema and golden example under `docs/contracts/` equals what the code generates
//!   (run with `UPDATE_CONTRACTS=1` to rewrite them, then review and commit the diff).
//! - Every committed example decodes and validates through its spec, and is canonical.
//! - Broken messages are refused with the exact JSON path of what is wrong.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use orderly_contracts::catalog::{MessageSpec, catalog, spec, to_canonical_json};
use orderly_contracts::messages::OrderPlaced;
use orderly_contracts::{ContractError, RawEnvelope, decode_raw};
use serde_json::{Value, json};

const REGENERATE: &str = "UPDATE_CONTRACTS=1 cargo test -p orderly-contracts --test schemas";

fn updating() -> bool {
    std::env::var("UPDATE_CONTRACTS").is_ok_and(|v| v == "1")
}

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("contracts/ is inside the workspace")
}

fn docs_dir() -> PathBuf {
    workspace_root().join("docs/contracts")
}

/// `docs/contracts/...`, for messages.
fn shown(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn schema_path(spec: &MessageSpec) -> PathBuf {
    docs_dir()
        .join("schemas")
        .join(format!("{}.schema.json", spec.file_stem()))
}

fn example_path(spec: &MessageSpec) -> PathBuf {
    docs_dir()
        .join("examples")
        .join(format!("{}.json", spec.file_stem()))
}

/// Writes (when updating) or compares one generated document with its committed file;
/// returns a line describing the difference, if any.
fn sync(path: &Path, generated: &str) -> Option<String> {
    if updating() {
        fs::create_dir_all(path.parent().expect("docs path has a parent"))
            .expect("create docs dir");
        fs::write(path, generated).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        return None;
    }
    match fs::read_to_string(path) {
        Ok(committed) if committed == generated => None,
        Ok(_) => Some(format!(
            "{} differs from the generated version",
            path.display()
        )),
        Err(e) => Some(format!("{} cannot be read: {e}", shown(path))),
    }
}

/// Files in `dir` ending in `suffix` that no spec generates (left over from a removed or
/// renamed type): deleted when updating, reported otherwise.
fn stale_files(dir: &Path, suffix: &str, expected: &BTreeSet<PathBuf>) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut stale = Vec::new();
    for path in entries.map(|e| e.expect("dir entry").path()) {
        let is_ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(suffix));
        if is_ours && !expected.contains(&path) {
            if updating() {
                fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
            } else {
                stale.push(format!("{} belongs to no message type", shown(&path)));
            }
        }
    }
    stale
}

#[test]
fn committed_schemas_and_examples_match_the_code() {
    let specs = catalog();
    let mut problems = Vec::new();
    for spec in &specs {
        problems.extend(sync(
            &schema_path(spec),
            &to_canonical_json(&(spec.schema)()),
        ));
        problems.extend(sync(
            &example_path(spec),
            &to_canonical_json(&(spec.example)()),
        ));
    }
    let schemas: BTreeSet<_> = specs.iter().map(schema_path).collect();
    let examples: BTreeSet<_> = specs.iter().map(example_path).collect();
    problems.extend(stale_files(
        &docs_dir().join("schemas"),
        ".schema.json",
        &schemas,
    ));
    problems.extend(stale_files(
        &docs_dir().join("examples"),
        ".json",
        &examples,
    ));
    assert!(
        problems.is_empty(),
        "the committed contract documents are out of date:\n  {}\n\nIf the change is intended, regenerate them with\n\n    {REGENERATE}\n\nand commit the result (a changed schema may need a new message version: see docs/contracts/README.md).",
        problems.join("\n  ")
    );
}

#[test]
fn every_example_decodes_validates_and_is_canonical() {
    for spec in catalog() {
        let generated = to_canonical_json(&(spec.example)());
        // While regenerating, the other test may be rewriting the files: check the source.
        let text = if updating() {
            generated.clone()
        } else {
            fs::read_to_string(example_path(&spec))
                .unwrap_or_else(|e| panic!("{}: {e}", spec.file_stem()))
        };
        assert_eq!(
            text,
            generated,
            "{}: committed example differs; run {REGENERATE}",
            spec.file_stem()
        );

        let raw =
            decode_raw(text.as_bytes()).unwrap_or_else(|e| panic!("{}: {e}", spec.file_stem()));
        assert_eq!(raw.message_type, spec.message_type);
        assert_eq!(raw.schema_version, spec.version);
        (spec.validate)(raw.clone())
            .unwrap_or_else(|e| panic!("{} does not validate: {e}", spec.file_stem()));
        let normalized = (spec.normalize)(raw).expect("validated above");
        assert_eq!(
            normalized,
            (spec.example)(),
            "{}: example is not in canonical form (decoding and re-encoding changes it)",
            spec.file_stem()
        );
    }
}

#[test]
fn every_schema_is_closed_and_describes_its_fields() {
    for spec in catalog() {
        let schema = (spec.schema)();
        let name = spec.file_stem();
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(
            schema["additionalProperties"], false,
            "{name}: envelope must be closed"
        );
        // Every object in the schema refuses unknown fields (except the trace context,
        // which follows W3C and may grow) and says what each property means.
        for (def_name, def) in schema["$defs"].as_object().into_iter().flatten() {
            if def["type"] != "object" {
                continue;
            }
            if def_name != "TraceContext" {
                assert_eq!(
                    def["additionalProperties"], false,
                    "{name}: {def_name} is open"
                );
            }
            for (property, property_schema) in def["properties"].as_object().into_iter().flatten() {
                assert!(
                    property_schema.get("description").is_some(),
                    "{name}: {def_name}.{property} has no description"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Broken messages: the error names the exact field.

fn placed() -> Value {
    (spec("order.placed", 1).expect("order.placed v1").example)()
}

/// Runs `json` through the spec of `message_type` v1, from bytes, as a consumer would.
fn check(message_type: &str, json: &Value) -> Result<(), ContractError> {
    let spec = spec(message_type, 1).expect("known type");
    let raw = decode_raw(json.to_string().as_bytes())?;
    (spec.validate)(raw)
}

/// Asserts that `json` is refused at `field` with a reason containing `reason`.
#[track_caller]
fn refused(message_type: &str, json: &Value, field: &str, reason: &str) {
    let err = check(message_type, json).expect_err("the broken message must be refused");
    assert_eq!(err.field, field, "wrong field for: {err}");
    assert!(
        err.reason.contains(reason),
        "reason `{}` does not mention `{reason}`",
        err.reason
    );
}

/// `value` with the field at `pointer` set to `new` (added if the object lacks it).
fn with(mut value: Value, pointer: &str, new: Value) -> Value {
    if let Some(slot) = value.pointer_mut(pointer) {
        *slot = new;
        return value;
    }
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("{parent} is not an object in the example"))
        .insert(key.to_owned(), new);
    value
}

fn without(mut value: Value, pointer: &str) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("pointer has a parent");
    value
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .and_then(|object| object.remove(key))
        .unwrap_or_else(|| panic!("{pointer} not in the example"));
    value
}

#[test]
fn the_golden_order_is_accepted() {
    assert_eq!(check("order.placed", &placed()), Ok(()));
    // Through the typed API as well.
    let envelope = decode_raw(placed().to_string().as_bytes())
        .and_then(RawEnvelope::decode_valid::<OrderPlaced>)
        .expect("valid");
    assert_eq!(envelope.payload.customer.name, "Jörg Schäfer");
    assert_eq!(envelope.payload.lines.len(), 2);
}

#[test]
fn zero_quantity_names_the_line() {
    let json = with(placed(), "/payload/lines/0/quantity", json!(0));
    refused(
        "order.placed",
        &json,
        "payload.lines[0].quantity",
        "quantity must be at least 1, got 0",
    );
    let json = with(placed(), "/payload/lines/1/quantity", json!(-3));
    refused(
        "order.placed",
        &json,
        "payload.lines[1].quantity",
        "expected u32",
    );
}

#[test]
fn bad_gtin_check_digit_names_the_line_and_the_digit() {
    let json = with(
        without(placed(), "/payload/lines/1/sku"),
        "/payload/lines/1/gtin",
        json!("4006381333931"),
    );
    assert_eq!(
        check("order.placed", &json),
        Ok(()),
        "a valid GTIN instead of the SKU is fine"
    );
    let json = with(
        without(placed(), "/payload/lines/1/sku"),
        "/payload/lines/1/gtin",
        json!("4006381333932"),
    );
    refused(
        "order.placed",
        &json,
        "payload.lines[1].gtin",
        "GTIN 4006381333932 has check digit 2, expected 1",
    );
}

#[test]
fn missing_fields_are_named_with_their_path() {
    refused(
        "order.placed",
        &without(placed(), "/payload/currency"),
        "payload.currency",
        "missing field `currency`",
    );
    refused(
        "order.placed",
        &without(placed(), "/payload/lines/0/title"),
        "payload.lines[0].title",
        "missing field",
    );
    refused(
        "order.placed",
        &without(placed(), "/payload/shipping_address/country"),
        "payload.shipping_address.country",
        "missing field",
    );
    refused(
        "order.placed",
        &without(placed(), "/message_id"),
        "message_id",
        "missing field",
    );
    refused(
        "order.placed",
        &without(placed(), "/payload"),
        "payload",
        "missing field",
    );
}

#[test]
fn unknown_fields_are_named_with_their_path() {
    let json = with(placed(), "/payload/lines/0", {
        let mut line = placed()["payload"]["lines"][0].clone();
        line["colour"] = json!("blau");
        line
    });
    refused(
        "order.placed",
        &json,
        "payload.lines[0].colour",
        "unknown field `colour`",
    );
    let mut json = placed();
    json["payload"]["coupon"] = json!("SPRING26");
    refused(
        "order.placed",
        &json,
        "payload.coupon",
        "unknown field `coupon`",
    );
    let mut json = placed();
    json["priority"] = json!("high");
    refused(
        "order.placed",
        &json,
        "priority",
        "unknown field `priority`",
    );
}

#[test]
fn wrong_type_or_version_is_refused_before_the_payload() {
    refused(
        "order.placed",
        &with(placed(), "/message_type", json!("order.accepted")),
        "message_type",
        "expected `order.placed`",
    );
    refused(
        "order.placed",
        &with(placed(), "/schema_version", json!(2)),
        "schema_version",
        "version 2 of `order.placed` is not accepted",
    );
}

#[test]
fn malformed_envelopes() {
    let err = decode_raw(b"not json").expect_err("not JSON");
    assert_eq!(err.field, "");
    refused(
        "order.placed",
        &with(placed(), "/message_id", json!("42")),
        "message_id",
        "UUID",
    );
    refused(
        "order.placed",
        &with(placed(), "/occurred_at", json!("yesterday")),
        "occurred_at",
        "",
    );
}

#[test]
fn bad_values_name_their_field() {
    refused(
        "order.placed",
        &with(placed(), "/payload/lines/0/unit_price", json!("-1.00")),
        "payload.lines[0].unit_price",
        "amount -1.00 is negative",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/shipping", json!(4.95)),
        "payload.shipping",
        "expected a string",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/currency", json!("eur")),
        "payload.currency",
        "three uppercase letters",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/shipping_address/country", json!("UK")),
        "payload.shipping_address.country",
        "`GB`",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/channel", json!("web")),
        "payload.channel",
        "unknown variant `web`",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/lines/0/sku", json!("MUG BLU")),
        "payload.lines[0].sku",
        "whitespace",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/customer/locale", json!("de_DE")),
        "payload.customer.locale",
        "`-`",
    );
    let business = with(placed(), "/payload/customer/is_business", json!(true));
    refused(
        "order.placed",
        &with(business, "/payload/customer/vat_id", json!("DE12345678")),
        "payload.customer.vat_id",
        "Germany (DE): DE followed by 9 digits",
    );
}

#[test]
fn business_rules_name_their_field() {
    // Totals.
    refused(
        "order.placed",
        &with(placed(), "/payload/total", json!("37.60")),
        "payload.total",
        "37.60 does not match lines + shipping − discount = 37.50",
    );
    assert_eq!(
        check(
            "order.placed",
            &with(placed(), "/payload/total", json!("37.51"))
        ),
        Ok(()),
        "one cent of rounding is tolerated"
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/lines/1/discount", json!("7.51")),
        "payload.lines[1].discount",
        "more than the line's",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/total", json!("37.505")),
        "payload.total",
        "more decimals than EUR allows (2)",
    );
    let net = with(placed(), "/payload/prices_include_tax", json!(false));
    refused(
        "order.placed",
        &without(net.clone(), "/payload/tax"),
        "payload.tax",
        "required when prices exclude tax",
    );
    refused(
        "order.placed",
        &net,
        "payload.total",
        "lines + shipping − discount + tax = 42.85",
    );
    // Product identification.
    let both = with(placed(), "/payload/lines/0/gtin", json!("5901234123457"));
    refused(
        "order.placed",
        &both,
        "payload.lines[0]",
        "exactly one of `sku` and `gtin`",
    );
    refused(
        "order.placed",
        &without(placed(), "/payload/lines/0/sku"),
        "payload.lines[0]",
        "needs a `sku` or a `gtin`",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/lines/1/line_id", json!("1")),
        "payload.lines[1].line_id",
        "line `1` appears more than once",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/lines", json!([])),
        "payload.lines",
        "must not be empty",
    );
    // Channel and customer.
    refused(
        "order.placed",
        &with(placed(), "/payload/channel", json!("marketplace")),
        "payload.marketplace",
        "required for marketplace orders",
    );
    refused(
        "order.placed",
        &without(placed(), "/payload/customer/email"),
        "payload.customer.email",
        "required for storefront orders",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/customer/vat_id", json!("DE123456789")),
        "payload.customer.vat_id",
        "only accepted for business customers",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/revision", json!(0)),
        "payload.revision",
        "counts from 1",
    );
    refused(
        "order.placed",
        &with(placed(), "/payload/billing_address/lines/0", json!("  ")),
        "payload.billing_address.lines[0]",
        "blank",
    );
}

#[test]
fn other_messages_name_their_fields_too() {
    let example = |t: &str| (spec(t, 1).expect(t).example)();

    let both = with(example("inventory.adjusted"), "/payload/delta", json!(-3));
    refused("inventory.adjusted", &both, "payload.delta", "not both");
    refused(
        "inventory.adjusted",
        &without(example("inventory.adjusted"), "/payload/set_on_hand"),
        "payload.set_on_hand",
        "either",
    );

    refused(
        "stock.level_changed",
        &with(
            example("stock.level_changed"),
            "/payload/warehouses/0/available",
            json!(140),
        ),
        "payload.warehouses[0].available",
        "on_hand − reserved = 138",
    );
    refused(
        "stock.unavailable",
        &with(
            example("stock.unavailable"),
            "/payload/shortages/0/available",
            json!(1),
        ),
        "payload.shortages[0].available",
        "not a shortage",
    );
    refused(
        "stock.reserved",
        &with(
            example("stock.reserved"),
            "/payload/allocations/1/warehouse_id",
            json!("berlin-1"),
        ),
        "payload.allocations[1].warehouse_id",
        "more than once",
    );

    refused(
        "shipment.updated",
        &with(
            with(
                example("shipment.updated"),
                "/payload/vocabulary",
                json!("orderly"),
            ),
            "/payload/raw_status",
            json!("shipped"),
        ),
        "payload.raw_status",
        "unknown ShipmentStatus `shipped`",
    );
    assert_eq!(
        check(
            "shipment.updated",
            &with(
                with(
                    example("shipment.updated"),
                    "/payload/vocabulary",
                    json!("orderly")
                ),
                "/payload/raw_status",
                json!("in_transit")
            )
        ),
        Ok(())
    );
    refused(
        "shipment.updated",
        &with(
            example("shipment.updated"),
            "/payload/raw_substatus",
            json!("x".repeat(65)),
        ),
        "payload.raw_substatus",
        "at most 64",
    );
    refused(
        "shipment.updated",
        &with(
            example("shipment.updated"),
            "/payload/raw_substatus",
            json!(" "),
        ),
        "payload.raw_substatus",
        "blank",
    );
    refused(
        "shipment.exception",
        &with(
            example("shipment.exception"),
            "/payload/status",
            json!("delivered"),
        ),
        "payload.status",
        "not an exception",
    );

    refused(
        "invoice.issued",
        &with(
            example("invoice.issued"),
            "/payload/totals/gross",
            json!("30.85"),
        ),
        "payload.totals.gross",
        "net + tax",
    );
    refused(
        "invoice.issued",
        &with(
            example("invoice.issued"),
            "/payload/vat_treatment",
            json!("intra_eu_reverse_charge"),
        ),
        "payload.buyer.vat_id",
        "reverse-charge",
    );
    refused(
        "invoice.requested",
        &without(example("invoice.requested"), "/payload/shipment_id"),
        "payload.shipment_id",
        "on shipment",
    );

    let sms = with(
        example("notification.requested"),
        "/payload/channel",
        json!("sms"),
    );
    refused("notification.requested", &sms, "payload.recipient", "E.164");
    refused(
        "notification.requested",
        &with(sms, "/payload/recipient", json!("+491701234567")),
        "payload.subject",
        "no subject",
    );

    refused(
        "order.status_changed",
        &with(
            example("order.status_changed"),
            "/payload/to",
            json!("accepted"),
        ),
        "payload.to",
        "both accepted",
    );
    refused(
        "order.cancel_requested",
        &with(
            example("order.cancel_requested"),
            "/payload/order/order_id",
            json!("0195f3a0-7c4e-7b1a-9d2e-3f4a5b6c7d8e"),
        ),
        "payload.order",
        "exactly one of",
    );
    refused(
        "order.exception_resolved",
        &without(example("order.exception_resolved"), "/payload/sku"),
        "payload.sku",
        "required to map",
    );
    refused(
        "order.refund_requested",
        &with(
            example("order.refund_requested"),
            "/payload/requested_by",
            json!({"kind": "operator"}),
        ),
        "payload.requested_by.id",
        "audited",
    );
    refused(
        "store.invoice_settings_updated",
        &with(
            example("store.invoice_settings_updated"),
            "/payload/credit_note_number_prefix",
            json!("RE-"),
        ),
        "payload.credit_note_number_prefix",
        "different prefixes",
    );
    refused(
        "catalog.product_upserted",
        &with(
            example("catalog.product_upserted"),
            "/payload/gtins",
            json!(["5901234123457", "05901234123457"]),
        ),
        "payload.gtins[1]",
        "listed twice",
    );
}

/// `docs/contracts/README.md`'s generated section `name` (between its markers) replaced by
/// `body`; `None` when the markers are missing.
fn with_section(readme: &str, name: &str, body: &str) -> Option<String> {
    let begin = readme.find(&format!("<!-- begin generated: {name} "))?;
    let begin = begin + readme[begin..].find("-->\n")? + 4;
    let end = readme.find(&format!("<!-- end generated: {name} -->"))?;
    (begin <= end).then(|| format!("{}{body}{}", &readme[..begin], &readme[end..]))
}

/// The routing table and the inbound-only list, as the README shows them.
fn routing_section() -> String {
    use orderly_contracts::routing::{QueueKind, inbound_only, routes};
    let grouped = |n: u32| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let code = |types: &[&str]| {
        types
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut out = String::from("| queue | kind | message types |\n|---|---|---|\n");
    for route in routes() {
        let kind = match route.kind {
            QueueKind::Worker => "worker".to_owned(),
            QueueKind::Outbound { max_length } => format!("outbound, max {}", grouped(max_length)),
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {} |\n",
            route.queue,
            code(&route.message_types)
        ));
    }
    out.push_str(&format!(
        "\nPublished only by outside producers (Orderly consumes them): {}.\n",
        code(&inbound_only())
    ));
    out
}

/// Every message type with who sends it and what it says, as the README shows them.
fn messages_section() -> String {
    let mut out = String::from("| type | from | what it says |\n|---|---|---|\n");
    for spec in catalog() {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            spec.message_type, spec.from, spec.summary
        ));
    }
    out
}

/// The README's routing table and message list are generated from the routing table and
/// the catalog, so a new route or type cannot be forgotten there.
#[test]
fn readme_tables_match_the_code() {
    let path = docs_dir().join("README.md");
    let readme = fs::read_to_string(&path).expect("docs/contracts/README.md");
    let mut generated = readme.clone();
    for (name, body) in [
        ("routing", routing_section()),
        ("messages", messages_section()),
    ] {
        generated = with_section(&generated, name, &body).unwrap_or_else(|| {
            panic!("README lacks the markers of its generated `{name}` section")
        });
    }
    if let Some(difference) = sync(&path, &generated) {
        panic!("{difference}; regenerate with `{REGENERATE}`");
    }
}

#[test]
fn the_asyncapi_document_matches_the_code() {
    let path = docs_dir().join("asyncapi.json");
    let mut generated = serde_json::to_string_pretty(&orderly_contracts::asyncapi::document())
        .expect("the document encodes");
    generated.push('\n');
    if let Some(difference) = sync(&path, &generated) {
        panic!("{difference}; regenerate with `{REGENERATE}`");
    }
}

/// The envelope `example` as JSON text with `payload`'s text in place of its payload.
fn with_payload_text(example: &Value, payload: &str) -> String {
    let mut envelope = example.clone();
    envelope["payload"] = json!("__PAYLOAD__");
    serde_json::to_string(&envelope)
        .expect("encode")
        .replace("\"__PAYLOAD__\"", payload)
}

/// `object`'s JSON text with `key` written a second time, first, with `value`.
fn with_key_twice(object: &Value, key: &str, value: &Value) -> String {
    let text = serde_json::to_string(object).expect("encode");
    format!(
        "{{{}:{},{}",
        serde_json::to_string(key).expect("key"),
        value,
        &text[1..]
    )
}

/// A key named twice is refused in every message type, at the top of the payload and inside
/// it, with the key and its path named: other parsers keep the first of two keys where
/// serde_json kept the last, so the same bytes must not mean two things.
#[test]
fn a_key_named_twice_is_refused_in_every_message_type() {
    for spec in catalog() {
        let example = (spec.example)();
        let payload = &example["payload"];
        let keys: Vec<String> = payload
            .as_object()
            .expect("payload is an object")
            .keys()
            .cloned()
            .collect();
        for key in &keys {
            let text = with_payload_text(&example, &with_key_twice(payload, key, &json!("other")));
            let err = decode_raw(text.as_bytes())
                .expect_err(&format!("{}: `{key}` twice is refused", spec.message_type));
            let reason = err.to_string();
            assert!(
                reason.contains(&format!("duplicate key `{key}`")) && reason.starts_with("payload"),
                "{}: {reason}",
                spec.message_type
            );
        }
        // Inside the payload: the first object nested in it (a line, an address, …).
        let nested = keys.iter().find_map(|key| match &payload[key.as_str()] {
            Value::Object(o) if !o.is_empty() => Some((key.clone(), None)),
            Value::Array(items) if items.first().is_some_and(Value::is_object) => {
                Some((key.clone(), Some(0)))
            }
            _ => None,
        });
        if let Some((key, index)) = nested {
            let inner = match index {
                Some(i) => &payload[key.as_str()][i],
                None => &payload[key.as_str()],
            };
            let inner_key = inner
                .as_object()
                .and_then(|o| o.keys().next())
                .expect("a key")
                .clone();
            let twice = with_key_twice(inner, &inner_key, &json!(null));
            let mut marked = payload.clone();
            let slot = match index {
                Some(i) => &mut marked[key.as_str()][i],
                None => &mut marked[key.as_str()],
            };
            *slot = json!("__INNER__");
            let payload_text = serde_json::to_string(&marked)
                .expect("encode")
                .replace("\"__INNER__\"", &twice);
            let text = with_payload_text(&example, &payload_text);
            let reason = decode_raw(text.as_bytes())
                .expect_err("a nested key twice is refused")
                .to_string();
            let path = match index {
                Some(i) => format!("payload.{key}[{i}]"),
                None => format!("payload.{key}"),
            };
            assert!(
                reason.contains(&format!("duplicate key `{inner_key}`")) && reason.contains(&path),
                "{}: {reason} (expected at {path})",
                spec.message_type
            );
        }
        // The same message without duplicates still decodes.
        let text = with_payload_text(&example, &serde_json::to_string(payload).expect("encode"));
        assert!(decode_raw(text.as_bytes()).is_ok(), "{}", spec.message_type);
    }
}

/// Every string leaf of `value` at `pointer`, with its dotted path.
fn string_leaves(value: &Value, pointer: String, dotted: String, out: &mut Vec<(String, String)>) {
    match value {
        Value::String(_) => out.push((pointer, dotted)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                string_leaves(
                    item,
                    format!("{pointer}/{i}"),
                    format!("{dotted}[{i}]"),
                    out,
                );
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                string_leaves(v, format!("{pointer}/{k}"), format!("{dotted}.{k}"), out);
            }
        }
        _ => {}
    }
}

/// The schema node that describes the instance at `pointer` (an envelope path such as
/// `/payload/lines/0/title`), following `$ref`s, `items` and nullable `anyOf`s.
fn schema_node<'s>(schema: &'s Value, pointer: &str) -> Option<&'s Value> {
    fn resolve<'s>(root: &'s Value, mut node: &'s Value) -> &'s Value {
        loop {
            if let Some(target) = node
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|p| root.pointer(p))
            {
                node = target;
            } else if let Some(variant) = node
                .get("anyOf")
                .and_then(Value::as_array)
                .and_then(|vs| vs.iter().find(|v| v.get("type") != Some(&json!("null"))))
            {
                node = variant;
            } else {
                return node;
            }
        }
    }
    let mut node = resolve(schema, schema);
    for part in pointer.split('/').skip(1) {
        let next = if part.parse::<usize>().is_ok() {
            node.get("items")?
        } else {
            node.get("properties")?.get(part)?
        };
        node = resolve(schema, next);
    }
    Some(node)
}

/// The limit in a refusal like `payload.title: is 20000 characters long, at most 500 are
/// allowed` for the field at `dotted`; none for a refusal of another kind (a format).
fn length_limit(err: &ContractError, dotted: &str) -> Option<u64> {
    let text = err.to_string();
    if !text.starts_with(dotted) || !text.contains("characters long") {
        return None;
    }
    text.split("at most ")
        .nth(1)?
        .split(' ')
        .next()?
        .parse()
        .ok()
}

/// The published schemas tell the length limits the rules enforce (issue 13): for every
/// string of every golden example, a value far too long is refused with a limit that the
/// schema states as `maxLength`, and a schema's `maxLength` is exactly what the rules let
/// through (one character more is refused). So a schema-valid message is never refused for
/// its length, and the schema is not stricter than Orderly.
#[test]
fn length_limits_of_the_rules_are_in_the_schemas() {
    let mut wrong = Vec::new();
    for spec in catalog() {
        let example = (spec.example)();
        let schema = (spec.schema)();
        let mut leaves = Vec::new();
        string_leaves(
            &example["payload"],
            "/payload".into(),
            "payload".into(),
            &mut leaves,
        );
        for (pointer, dotted) in leaves {
            let declared = schema_node(&schema, &pointer)
                .and_then(|node| node.get("maxLength"))
                .and_then(Value::as_u64);
            let too_long = with(example.clone(), &pointer, json!("x".repeat(20_000)));
            let enforced = check(spec.message_type, &too_long)
                .err()
                .and_then(|e| length_limit(&e, &dotted));
            match (enforced, declared) {
                (Some(limit), Some(max)) if limit == max => {}
                (Some(limit), declared) => wrong.push(format!(
                    "{} {dotted}: the rules allow {limit} characters, the schema {declared:?}",
                    spec.message_type
                )),
                (None, Some(max)) => {
                    // A format (an id, a code) may refuse long values for its own reason;
                    // the schema's limit must still be the last length let through.
                    let at = |n: u64| {
                        let n = usize::try_from(n).unwrap_or(usize::MAX);
                        check(
                            spec.message_type,
                            &with(example.clone(), &pointer, json!("7".repeat(n))),
                        )
                    };
                    if at(max + 1).is_ok() {
                        wrong.push(format!(
                            "{} {dotted}: the schema says at most {max}, the rules take more",
                            spec.message_type
                        ));
                    }
                }
                (None, None) => {}
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} fields:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

/// A service's setup template and the requests that move a setup: each rule names its field.
#[test]
fn setup_templates_and_requests_name_their_field() {
    let template = json!({
        "version": 1,
        "stages": [
            {"key": "onboarding", "title": "Form", "kind": "intake", "role": "client",
             "sla_business_hours": 8,
             "fields": [{"key": "shop_url", "label": "Shop", "kind": "url", "required": true}]},
            {"key": "build", "title": "Build", "kind": "work", "role": "setup_manager",
             "sla_business_hours": 8},
            {"key": "qa", "title": "QA", "kind": "qa", "role": "setup_manager",
             "sla_business_hours": 8, "loop_back_to": "build", "checklist": ["links work"]}
        ]
    });
    let product = (spec("catalog.product_upserted", 1).expect("known").example)();
    let service = with(
        with(product, "/payload/setup", template),
        "/payload/stock_tracked",
        json!(false),
    );
    assert_eq!(check("catalog.product_upserted", &service), Ok(()));
    refused(
        "catalog.product_upserted",
        &with(service.clone(), "/payload/stock_tracked", json!(true)),
        "payload.stock_tracked",
        "not stock-tracked",
    );
    refused(
        "catalog.product_upserted",
        &with(
            service.clone(),
            "/payload/setup/stages/2/loop_back_to",
            json!("qa"),
        ),
        "payload.setup.stages[2].loop_back_to",
        "`qa` is not an earlier stage",
    );
    refused(
        "catalog.product_upserted",
        &with(
            service.clone(),
            "/payload/setup/stages/1/role",
            json!("client"),
        ),
        "payload.setup.stages[1].role",
        "completed by staff",
    );
    refused(
        "catalog.product_upserted",
        &with(service.clone(), "/payload/setup/stages/0/fields", json!([])),
        "payload.setup.stages[0].fields",
        "must not be empty",
    );
    refused(
        "catalog.product_upserted",
        &with(
            service.clone(),
            "/payload/setup/stages/2/checklist",
            json!(["a", "a"]),
        ),
        "payload.setup.stages[2].checklist[1]",
        "listed twice",
    );
    refused(
        "catalog.product_upserted",
        &with(
            service.clone(),
            "/payload/setup/stages/1/key",
            json!("Build!"),
        ),
        "payload.setup.stages[1].key",
        "not a stage key",
    );
    refused(
        "catalog.product_upserted",
        &with(
            service,
            "/payload/setup/stages/0/fields/0/choices",
            json!(["a"]),
        ),
        "payload.setup.stages[0].fields[0].choices",
        "only `choice` fields",
    );

    let request = (spec("setup.action_requested", 1).expect("known").example)();
    refused(
        "setup.action_requested",
        &with(request.clone(), "/payload/action", json!("return")),
        "payload.to_stage",
        "needs the stage to go back to",
    );
    refused(
        "setup.action_requested",
        &with(request.clone(), "/payload/action", json!("advance")),
        "payload.values",
        "only `submit_intake` takes values",
    );
    refused(
        "setup.action_requested",
        &with(
            without(request, "/payload/values"),
            "/payload/action",
            json!("request_changes"),
        ),
        "payload.note",
        "needs a note saying why",
    );
}

/// An exempt product may name the provision it is exempt under (Art. 226(11)); a product
/// taxed at a rate may not, and the reference is bounded.
#[test]
fn only_an_exempt_product_names_an_exemption_reference() {
    let product = (spec("catalog.product_upserted", 1).expect("known").example)();
    let exempt = with(
        with(product.clone(), "/payload/tax_category", json!("exempt")),
        "/payload/exemption_reference",
        json!("Art. 135(1)(h) Directive 2006/112/EC"),
    );
    assert_eq!(check("catalog.product_upserted", &exempt), Ok(()));
    refused(
        "catalog.product_upserted",
        &with(exempt.clone(), "/payload/tax_category", json!("standard")),
        "payload.exemption_reference",
        "only an exempt product",
    );
    refused(
        "catalog.product_upserted",
        &with(
            exempt,
            "/payload/exemption_reference",
            json!("x".repeat(201)),
        ),
        "payload.exemption_reference",
        "",
    );
}
