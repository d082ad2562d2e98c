//! The admin API over HTTP (axum), laid out by resource: [`orders`] holds the order list and
//! detail; [`exceptions`] the open order item exceptions (the operators' work queue);
//! [`actions`] the actions as commands (the staff's cancel, refund, hold, release, notes,
//! resending a notification, exception resolutions, and a customer's cancellation request)
//! and the command resources they create; [`audit`] the audit log; [`documents`] an order's
//! PDFs; [`customer`] the storefront customers' own orders and who a customer token is;
//! [`customers`] a customer's statistics, for staff; [`export`] the order list as CSV or JSON
//! lines; [`jobs`] bulk actions as jobs; [`analytics`] the order analytics; [`console`] the
//! admin console's pages under `/admin` (not API endpoints: outside [`endpoints`] and the
//! OpenAPI document); [`auth`] turns a staff bearer token into a [`auth::Caller`] (401), checks a
//! permission (403) and counts rate limits; [`problem`] is the one error type, answered as
//! `application/problem+json` (RFC 9457) naming the parameter at fault.
//! Internal errors are logged with their cause and answered 503 without detail: bad input is
//! never a 5xx.
//!
//! [`endpoints`] is the one list of endpoints: the router is built from it, and so is the
//! OpenAPI document ([`openapi`]), each entry an [`endpoint::Endpoint`] saying how it is
//! served and what the document says about it. Adding an endpoint is adding an entry.

mod actions;
mod analytics;
mod audit;
mod auth;
pub(crate) mod console;
mod customer;
mod customers;
mod documents;
mod endpoint;
mod exceptions;
mod export;
mod exports;
mod intake;
mod jobs;
pub(crate) mod openapi;
mod orders;
mod problem;
mod setups;

use std::sync::Arc;

use axum::{
    Router,
    extract::{DefaultBodyLimit, Request},
    http::{StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
};
use orderly_runtime::outbox::Handoff;
use sqlx::PgPool;

pub(crate) use problem::Problem;

use crate::domain::access::Permission;
use crate::domain::command::{
    AddressBody, CancelBody, HoldBody, NoteBody, RefundBody, ReleaseBody, ResendBody, ResolveBody,
    SetupStepBody,
};
use crate::domain::rate::Throttle;
use crate::domain::{
    audit as audit_query, bulk as bulk_query, exceptions as exception_query, filter,
    jobs as jobs_query, setups as setup_query,
};
use endpoint::{AnswerHeader, Endpoint};

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct Api {
    pub(crate) pool: PgPool,
    /// The relay of the api schema's outbox, to publish a command's message at once (the
    /// relay's sweep finds it otherwise).
    pub(crate) handoff: Option<Handoff>,
    /// Where invoice and credit-note PDFs are (`[documents]`).
    pub(crate) documents: Arc<dyn object_store::ObjectStore>,
    /// The rate limits, per token and per address.
    pub(crate) throttle: Throttle,
    /// Wakes the bulk jobs' sender when a job is created.
    pub(crate) jobs: tokio::sync::Notify,
    /// Wakes the export jobs' writer when an export is asked for.
    pub(crate) exports: tokio::sync::Notify,
    /// The broker, for the operations page (queues, dead letters).
    pub(crate) operations: crate::operations::BrokerAccess,
    /// This process's readiness checks (every worker it runs), for the operations page.
    pub(crate) health: orderly_runtime::health::Health,
    /// How the admin console's sessions and cookies are made.
    pub(crate) console: console::ConsoleConfig,
}

/// Every endpoint the API serves, as the router serves it and the OpenAPI document
/// describes it.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    const ORDER_ID: &str = "The order's id.";
    const ORDER_NOT_FOUND: &str =
        "No such order, or one of a store the token does not see (the same answer).";
    const DOCUMENT_ID: &str =
        "The invoice's or credit note's id (`document_id` in the order's detail).";
    const PDF: &str = "The PDF from the document store, served only if its SHA-256 is the one \
        issued (`pdf_sha256` in the order's detail). `ETag` is that SHA-256: send it back as \
        `If-None-Match` for a 304. A document whose bytes do not match what was issued is \
        never served (503, `document-unavailable`; operators are told).";
    const CUSTOMER_ORDER_NOT_FOUND: &str = "No such order of the token's customer: another \
        customer's, another store's, a marketplace order, or none at all (the same answer).";
    const DOCUMENT_NOT_FOUND: &str = "No such document of the order (the same answer as for the \
        order), or (`document-missing`) an issued document whose PDF is not in the document \
        store.";
    const EXPORT_ID: &str = "The export job's id (from its `Location`).";
    const EXPORT_NOT_FOUND: &str = "No such export job, or one this token may not see (another staff member's, for staff \
         limited to stores).";
    const JOB_ID: &str = "The job's id (from the bulk request's `Location`).";
    const JOB_NOT_FOUND: &str = "No such job, or one this token may not see (another staff member's, for staff limited \
         to stores).";
    vec![
        Endpoint::get("/api/v1/openapi.json", openapi::serve).doc(
            "getOpenApi",
            "meta",
            "This document",
            "The OpenAPI 3.1 document of this API (also committed as `docs/api/openapi.json`).",
        ),
        Endpoint::get("/api/v1/admin/orders", orders::list)
            .doc(
                "listOrders",
                "orders",
                "List orders",
                "Orders of the stores the token sees, newest first, filtered, one page at a \
                 time. Paging is by key: orders arriving while you page do not shift pages. \
                 Unknown parameters are refused.",
            )
            .staff(Permission::OrdersView)
            .query(filter::Param::ALL.map(filter::Param::doc)),
        Endpoint::get("/api/v1/admin/orders/export", export::export)
            .doc(
                "exportOrders",
                "orders",
                "Export orders (CSV or JSON lines)",
                "Every order the list shows for the same filters, newest first, streamed with \
                 constant memory, one row per order or per line, chosen columns. Text cells a \
                 spreadsheet would run as a formula are written with a leading `'`; money is \
                 a decimal string beside its currency. Each line of `jsonl` is an \
                 `ExportLine` (components). `limit`, `cursor` and `count` are refused. In \
                 the audit log as `orders.export`.",
            )
            .staff(Permission::OrdersView)
            .query(
                filter::Param::FILTERS
                    .map(filter::Param::doc)
                    .into_iter()
                    .chain(crate::domain::export::parameters()),
            ),
        Endpoint::post("/api/v1/admin/orders/exports", exports::create)
            .doc(
                "createExportJob",
                "orders",
                "Export orders to a file in the document store (a job)",
                "For exports too large to stream: the same query string as `exportOrders` \
                 (filters, `format`, `rows`, `columns`), checked the same way; the file is \
                 written by the worker, a page at a time, and is that export's file byte for \
                 byte. The answer is the job: poll its `Location` until it is `completed`, \
                 then download it. In the audit log as `orders.export_job`.",
            )
            .staff(Permission::OrdersView)
            .query(
                filter::Param::FILTERS
                    .map(filter::Param::doc)
                    .into_iter()
                    .chain(crate::domain::export::parameters()),
            )
            .answer_header(AnswerHeader::Location),
        Endpoint::get("/api/v1/admin/exports/{id}", exports::show)
            .doc(
                "getExportJob",
                "orders",
                "An export job",
                "Where it stands (`running`, `completed`, `failed`), and once completed its \
                 rows, size, SHA-256 and download link. Seen by its creator and by staff who \
                 see every store.",
            )
            .staff(Permission::OrdersView)
            .path_param("id", EXPORT_ID)
            .not_found(EXPORT_NOT_FOUND),
        Endpoint::get("/api/v1/admin/exports/{id}/download", exports::download)
            .doc(
                "downloadExport",
                "orders",
                "An export job's file",
                "The file from the document store, streamed; `ETag` is its SHA-256.",
            )
            .staff(Permission::OrdersView)
            .path_param("id", EXPORT_ID)
            .not_found(EXPORT_NOT_FOUND)
            .refuses(409, "The export is not written yet (or failed)."),
        Endpoint::get("/api/v1/admin/orders/{id}", orders::detail)
            .doc(
                "getOrder",
                "orders",
                "One order",
                "The order as the events told it: header, lines, addresses, payment, status \
                 history, shipments, invoices, credit notes, cancellations, and where it \
                 stands in its saga. `ETag` is its status sequence (send it as `If-Match`).",
            )
            .staff(Permission::OrdersView)
            .path_param("id", ORDER_ID)
            .answer_header(AnswerHeader::ETag)
            .not_found(ORDER_NOT_FOUND),
        Endpoint::get(
            "/api/v1/admin/orders/{id}/documents/{document_id}",
            documents::admin,
        )
        .doc(
            "getOrderDocument",
            "documents",
            "An invoice's or credit note's PDF",
            PDF,
        )
        .staff(Permission::OrdersView)
        .path_param("id", ORDER_ID)
        .path_param("document_id", DOCUMENT_ID)
        .not_found(DOCUMENT_NOT_FOUND),
        Endpoint::action::<CancelBody>("/api/v1/admin/orders/{id}/cancel")
            .doc(
                "cancelOrder",
                "actions",
                "Cancel an order, or some lines",
                "Sends `order.cancel_requested`. After dispatch the command is `refused` (or \
                 only the undispatched lines are cancelled), not an HTTP error.",
            )
            .path_param("id", ORDER_ID)
            .not_found(ORDER_NOT_FOUND),
        Endpoint::action::<RefundBody>("/api/v1/admin/orders/{id}/refund")
            .doc(
                "refundOrder",
                "actions",
                "Refund lines and/or shipping",
                "Sends `order.refund_requested`; invoicing issues the credit note.",
            )
            .path_param("id", ORDER_ID)
            .not_found(ORDER_NOT_FOUND),
        Endpoint::action::<NoteBody>("/api/v1/admin/orders/{id}/notes")
            .doc(
                "addOrderNote",
                "actions",
                "Add an internal note",
                "Sends `order.note_requested`; the note goes on the order's timeline.",
            )
            .path_param("id", ORDER_ID)
            .not_found(ORDER_NOT_FOUND),
        Endpoint::action::<HoldBody>("/api/v1/admin/orders/{id}/hold")
            .doc(
                "holdOrder",
                "actions",
                "Put an order on hold",
                "Sends `order.hold_requested`. A hold is not a status: no warehouse is asked \
                 to ship the order until it is released (one already asked is told to \
                 pause). An order whose every shipment has left, or that is cancelled, \
                 completed or already held, makes the command `refused`.",
            )
            .path_param("id", ORDER_ID)
            .not_found(ORDER_NOT_FOUND),
        Endpoint::action::<ReleaseBody>("/api/v1/admin/orders/{id}/release")
            .doc(
                "releaseOrder",
                "actions",
                "Release an order's hold",
                "Sends `order.release_requested`: the order carries on from where it was held \
                 (releasing an order that is not held is `refused`).",
            )
            .path_param("id", ORDER_ID)
            .not_found(ORDER_NOT_FOUND),
        Endpoint::action::<AddressBody>("/api/v1/admin/orders/{id}/address")
            .doc(
                "changeOrderAddress",
                "actions",
                "Change an order's delivery and/or invoice address",
                "Sends `order.address_change_requested`. Until a shipment has left the \
                 warehouse the orders worker takes it and announces `order.address_changed`: \
                 fulfillment ships and invoices what it has not yet asked for to the new \
                 address and the warehouse relabels open shipments. After a dispatch, or on a \
                 cancelled or completed order, the command is `refused` with the reason. A \
                 later marketplace re-push does not undo the change.",
            )
            .path_param("id", ORDER_ID)
            .not_found(ORDER_NOT_FOUND),
        Endpoint::action::<ResendBody>("/api/v1/admin/orders/{id}/notifications/resend")
            .doc(
                "resendOrderNotification",
                "actions",
                "Send a customer notification again",
                "Sends `notification.resend_requested` to the notifications worker, which \
                 answers the command.",
            )
            .path_param("id", ORDER_ID)
            .not_found(ORDER_NOT_FOUND),
        Endpoint::get("/api/v1/admin/order-exceptions", exceptions::list)
            .doc(
                "listOrderExceptions",
                "exceptions",
                "List open order item exceptions",
                "The operators' work queue: lines a marketplace sent that matched no product \
                 (their order is `on_hold`), oldest first, of the stores the token sees. \
                 Unknown parameters are refused.",
            )
            .staff(Permission::OrdersView)
            .query(exception_query::Param::ALL.map(exception_query::Param::doc)),
        Endpoint::get("/api/v1/admin/order-exceptions/{id}", exceptions::detail)
            .doc(
                "getOrderException",
                "exceptions",
                "One open order item exception",
                "The line as the marketplace sent it (as far as `order.on_hold` carries it), \
                 the order's `ETag` for `If-Match` on the resolution, and links to the order \
                 and to resolve it.",
            )
            .staff(Permission::OrdersView)
            .path_param("id", "The order item exception's id.")
            .not_found(
                "No such open order item exception, or one of a store the token does not see.",
            ),
        Endpoint::get("/api/v1/admin/setups", setups::list)
            .doc(
                "listSetups",
                "setups",
                "List setups of service lines",
                "The setups of service products (one per service line of an accepted order), \
                 most recently changed first, of the stores the token sees: a setup manager's \
                 work queue (`overdue=true` for the stages past their SLA). Unknown parameters \
                 are refused.",
            )
            .staff(Permission::SetupsView)
            .query(setup_query::Param::ALL.map(setup_query::Param::doc)),
        Endpoint::get("/api/v1/admin/setups/{id}", setups::detail)
            .doc(
                "getSetup",
                "setups",
                "One setup with its history",
                "Where the setup stands (status, stage, loops, whether it is overdue) and \
                 every change it went through, with who caused it. `ETag` is its sequence \
                 (send it as `If-Match` on a step).",
            )
            .staff(Permission::SetupsView)
            .answer_header(AnswerHeader::ETag)
            .path_param("id", "The setup's id.")
            .not_found("No such setup, or one of a store the token does not see."),
        Endpoint::post("/api/v1/admin/setups/{id}/intake-link", intake::mint)
            .doc(
                "setupIntakeLink",
                "setups",
                "A link for the client's onboarding form",
                "A signed link (`/setup-intake/{token}` on this API) to the onboarding form of \
                 the setup, valid 14 days, signed with the store's current secret (the one \
                 customer tokens use): send it to the client. The form is rendered from the \
                 template version the setup follows and checked field by field before \
                 anything is sent. In the audit log as `setups.intake_link`.",
            )
            .staff(Permission::SetupsAdvance)
            .path_param("id", "The setup's id.")
            .not_found("No such setup, or one of a store the token does not see.")
            .refuses(
                409,
                "The store has no secret yet (`orderly store-secret rotate`).",
            ),
        Endpoint::action::<SetupStepBody>("/api/v1/admin/setups/{id}/steps")
            .doc(
                "stepSetup",
                "setups",
                "Move a setup along",
                "Sends `setup.action_requested` to the setups worker as the token's staff \
                 role: complete the current stage (`advance`), go back to an earlier one \
                 (`return`), record the QA checklist (`record_qa`), `hold` or `release`. The \
                 worker decides (who may, in which state) and answers the command. `If-Match` \
                 names the setup's `ETag` (its sequence, as its detail gives it).",
            )
            .path_param("id", "The setup's id.")
            .not_found("No such setup, or one of a store the token does not see."),
        Endpoint::action::<ResolveBody>("/api/v1/admin/order-exceptions/{id}/resolve")
            .doc(
                "resolveOrderException",
                "actions",
                "Resolve an order item exception",
                "Sends `order.exception_resolved`. The exception ids are in the queue \
                 (`/api/v1/admin/order-exceptions`) and in the detail of an order on hold.",
            )
            .path_param("id", "The order item exception's id.")
            .not_found("No such order item exception, or one of a store the token does not see."),
        Endpoint::get("/api/v1/admin/commands/{id}", actions::command)
            .doc(
                "getCommand",
                "commands",
                "A command and what became of it",
                "`pending` until the owning worker answers, then `applied`, \
                 `partially_applied`, `refused` (with why) or `duplicate`.",
            )
            .staff(Permission::OrdersView)
            .path_param("id", "The command's id (from the action's `Location`).")
            .not_found("No such command, or one of a store the token does not see."),
        Endpoint::post("/api/v1/admin/orders/bulk", jobs::create)
            .doc(
                "bulkOrders",
                "jobs",
                "One action on many orders (a job)",
                "Cancel, hold, release, note or resend a notification for every order the list \
                 shows for `filter` (in the token's stores), or for up to 1,000 `order_ids`, \
                 at most 100,000 orders. The answer is the job, whose orders are fixed now, \
                 each to be sent or skipped with the reason (`not_visible`: no such order in \
                 the token's stores; `not_applicable`: a cancelled or completed order). The \
                 commands are then sent in batches, each like the single action's (the owner \
                 of the order refuses what its state forbids, with the reason); a crash \
                 resumes the job without sending any twice. `dry_run: true` answers with a \
                 completed job whose items say what a real run would send and skip, and sends \
                 nothing. Needs `orders.view` and the action's permission. In the audit log \
                 as `orders.bulk.<action>`, and each order's command as the single action.",
            )
            .staff(Permission::OrdersView)
            .body::<crate::domain::bulk::BulkBody>()
            .header(endpoint::RequestHeader::IdempotencyKey)
            .answer_header(AnswerHeader::Location)
            .refuses(
                422,
                "The `Idempotency-Key` was used for another request, or (`selection-too-large`) \
                 the filter selects more than 100,000 orders.",
            ),
        Endpoint::get("/api/v1/admin/jobs", jobs::list)
            .doc(
                "listJobs",
                "jobs",
                "List bulk jobs",
                "Bulk jobs, newest first, each with where it stands and its progress: the \
                 caller's own, or everyone's for staff who see every store.",
            )
            .staff(Permission::OrdersView)
            .query(jobs_query::JobsParam::ALL.map(jobs_query::JobsParam::doc)),
        Endpoint::get("/api/v1/admin/jobs/{id}", jobs::show)
            .doc(
                "getJob",
                "jobs",
                "A bulk job",
                "The job, where it stands, and how many of its orders were sent, skipped, \
                 applied, refused or await an answer. Seen by its creator and by staff who \
                 see every store.",
            )
            .staff(Permission::OrdersView)
            .path_param("id", JOB_ID)
            .not_found(JOB_NOT_FOUND),
        Endpoint::get("/api/v1/admin/jobs/{id}/items", jobs::items)
            .doc(
                "listJobItems",
                "jobs",
                "A bulk job's orders",
                "Each order of the job in its order, with what became of it: skipped (and \
                 why), pending, or the command sent and its answer.",
            )
            .staff(Permission::OrdersView)
            .path_param("id", JOB_ID)
            .query(bulk_query::ItemsParam::ALL.map(bulk_query::ItemsParam::doc))
            .not_found(JOB_NOT_FOUND),
        Endpoint::post("/api/v1/admin/jobs/{id}/cancel", jobs::cancel)
            .doc(
                "cancelJob",
                "jobs",
                "Stop a bulk job",
                "Orders not sent yet are skipped (`job_cancelled`); commands already sent stay \
                 sent. Needs the job's action's permission. In the audit log as `jobs.cancel`.",
            )
            .staff(Permission::OrdersView)
            .path_param("id", JOB_ID)
            .not_found(JOB_NOT_FOUND)
            .refuses(
                409,
                "The job is no longer running (completed or cancelled).",
            ),
        Endpoint::get("/api/v1/admin/analytics/orders", analytics::orders)
            .doc(
                "getOrderAnalytics",
                "analytics",
                "Order volumes, revenue, rates and lead times",
                "Per day or ISO week of `placed_at` (UTC), per currency, and per store and \
                 channel when grouped: orders, cancellations, revenue (gross, net, tax) and \
                 average order value of the orders not cancelled, exception and backorder \
                 rates with the time to resolve and to serve, lead times placed → shipped → \
                 delivered (nearest-rank p50 and p90, whole seconds) and late shipments. Over \
                 the stores the token sees, read from facts the events keep current. Every \
                 figure is defined in docs/api.md (Analytics).",
            )
            .staff(Permission::OrdersView)
            .query(
                crate::domain::analytics::Param::ORDERS.map(crate::domain::analytics::Param::doc),
            ),
        Endpoint::get("/api/v1/admin/analytics/setups", setups::analytics)
            .doc(
                "setupAnalytics",
                "analytics",
                "Setups: time per stage, loops, overdue",
                "Per service product and template version, of the stores the token sees: \
                 setups started and completed, loops per setup, the share found past a \
                 stage's SLA, and per stage (in the template's order) the median and 90th \
                 percentile hours setups spent in it, every visit together, time on hold \
                 left out.",
            )
            .staff(Permission::SetupsView)
            .query(setup_query::Param::ANALYTICS.map(setup_query::Param::doc)),
        Endpoint::get("/api/v1/admin/analytics/top-skus", analytics::top_skus)
            .doc(
                "getTopSkus",
                "analytics",
                "The products sold most",
                "By units on the orders placed in the period and not cancelled as a whole, \
                 per currency, with the orders and revenue of their lines.",
            )
            .staff(Permission::OrdersView)
            .query(crate::domain::analytics::Param::TOP.map(crate::domain::analytics::Param::doc)),
        Endpoint::get("/api/v1/admin/audit-log", audit::list)
            .doc(
                "listAuditLog",
                "audit",
                "The audit log",
                "Every staff action request that authenticated, whatever its answer, newest \
                 first: who, token, what, on which order, from which address, status and \
                 outcome. A caller limited to stores sees their entries only.",
            )
            .staff(Permission::AuditView)
            .query(audit_query::Param::ALL.map(audit_query::Param::doc)),
        Endpoint::get(
            "/api/v1/admin/stores/{store_id}/customers/{customer_id}/stats",
            customers::stats,
        )
        .doc(
            "getCustomerStats",
            "customers",
            "A customer's order statistics",
            "In one store: every order of theirs the read model knows, those cancelled as a \
             whole, the first and last order, and per currency the orders, what they came to \
             and what was credited back. Computed from the customer's own orders (indexed), \
             so duplicate or reordered events cannot skew them.",
        )
        .staff(Permission::OrdersView)
        .path_param("store_id", "The store.")
        .path_param(
            "customer_id",
            "The customer's id, as the order events name it.",
        )
        .not_found("No orders of this customer, or a store the token does not see."),
        Endpoint::get("/api/v1/store/customer-orders", customer::list)
            .doc(
                "listCustomerOrders",
                "storefront",
                "A customer's own orders",
                "The orders of the token's customer in the token's store (storefront orders, \
                 once accepted), newest first, with their status and tracking, one page at a \
                 time. Paging is by key. Any other parameter is refused.",
            )
            .customer()
            .query(filter::Param::PAGE.map(filter::Param::doc)),
        Endpoint::get("/api/v1/store/customer-stats", customer::stats)
            .doc(
                "getCustomerOwnStats",
                "storefront",
                "A customer's own order statistics",
                "The token's customer's figures in the token's store, over the orders their \
                 list shows (storefront orders): how many, how many cancelled, the first and \
                 last, and per currency what they came to and what was credited back. Zeros \
                 before their first order.",
            )
            .customer(),
        Endpoint::get("/api/v1/store/customer-orders/{id}", customer::detail)
            .doc(
                "getCustomerOrder",
                "storefront",
                "One of a customer's orders",
                "Its status, lines, addresses, money, shipments with tracking, cancellations, \
                 and its invoices and credit notes, each with the path of its PDF \
                 (`download`). `ETag` is its status sequence (send it as `If-Match` with a \
                 cancellation request).",
            )
            .customer()
            .path_param("id", ORDER_ID)
            .answer_header(AnswerHeader::ETag)
            .not_found(CUSTOMER_ORDER_NOT_FOUND),
        Endpoint::get(
            "/api/v1/store/customer-orders/{id}/documents/{document_id}",
            customer::document,
        )
        .doc(
            "getCustomerOrderDocument",
            "storefront",
            "An invoice's or credit note's PDF, for its customer",
            PDF,
        )
        .customer()
        .path_param("id", ORDER_ID)
        .path_param("document_id", DOCUMENT_ID)
        .not_found(DOCUMENT_NOT_FOUND),
        Endpoint::customer_action::<CancelBody>("/api/v1/store/customer-orders/{id}/cancel")
            .doc(
                "requestCustomerOrderCancellation",
                "storefront",
                "Ask for the cancellation of one's own order, or of some lines",
                "Sends `order.cancel_requested` with `requested_by` the customer, exactly as \
                 the staff's cancellation does; the answer is `202` with the command \
                 (`/api/v1/store/customer-commands/{id}`). After dispatch the command is \
                 `refused` with the reason (or only the undispatched lines are cancelled), \
                 not an HTTP error. Recorded in the audit log with the customer as actor.",
            )
            .path_param("id", ORDER_ID)
            .not_found(CUSTOMER_ORDER_NOT_FOUND),
        Endpoint::get(
            "/api/v1/store/customer-commands/{id}",
            actions::customer_command,
        )
        .doc(
            "getCustomerCommand",
            "storefront",
            "A customer's cancellation request and what became of it",
            "`pending` until the orders worker answers, then `applied`, \
                 `partially_applied`, `refused` (with why) or `duplicate`.",
        )
        .customer()
        .path_param("id", "The command's id (from the request's `Location`).")
        .not_found("No such command of the token's customer (the same answer)."),
    ]
}

/// The routes of [`endpoints`], with the body limit and problem+json for unknown paths and
/// methods.
pub(crate) fn router(api: Arc<Api>, max_body_bytes: usize) -> Router {
    endpoints()
        .into_iter()
        .fold(Router::new(), |router, e| router.route(e.path, e.route))
        .merge(console::router())
        .route(
            "/setup-intake/{token}",
            axum::routing::get(intake::show).post(intake::submit),
        )
        .fallback(|| async {
            Problem::new(
                StatusCode::NOT_FOUND,
                "not-found",
                "No such endpoint",
                "see docs/api.md for the endpoints of this version",
            )
        })
        .method_not_allowed_fallback(|| async {
            Problem::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
                "see docs/api.md for the methods each endpoint takes",
            )
        })
        .layer(middleware::from_fn(move |req, next| {
            limit_body(req, next, max_body_bytes)
        }))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(api)
}

/// Refuses a request whose declared body is larger than the limit before reading it.
async fn limit_body(req: Request, next: Next, limit: usize) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            "Body too large",
            format!("a request body may have at most {limit} bytes"),
        )
        .into_response();
    }
    next.run(req).await
}
