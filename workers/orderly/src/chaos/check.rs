//! The one checker of the fault suite: after a scenario has drained, what must hold whatever
//! the fault was. It reads every worker's schema, as an operator's tool may (the workers
//! themselves never read each other's), and the broker's queue depths.

use std::collections::BTreeMap;

use sqlx::PgPool;

/// One invariant's verdict.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub(crate) name: &'static str,
    /// Empty when it holds; else what was found.
    pub(crate) problems: Vec<String>,
}

impl Verdict {
    pub(crate) fn holds(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Customer notifications each order of the load asks for under the stores' default rules:
/// confirmation, dispatch, delivery, invoice.
pub(crate) const NOTIFICATIONS_PER_ORDER: i64 = 4;

/// The schemas with an outbox: every worker of the fleet owns the schema of its name.
const SCHEMAS: &[&str] = super::fleet::WORKERS;

/// How far the load has got: orders placed (as the orders worker knows them), orders at
/// their end state (completed, invoiced, every notification asked for).
pub(crate) async fn progress(pool: &PgPool) -> anyhow::Result<(i64, i64)> {
    let placed: i64 = sqlx::query_scalar("select count(*) from orders.orders")
        .fetch_one(pool)
        .await?;
    let done: i64 = sqlx::query_scalar(
        "select count(*) from orders.orders o
          where o.status = 'completed'
            and exists (select 1 from invoicing.invoices i where i.order_id = o.order_id)
            and (select count(*) from notifications.requests r
                  where r.order_id = o.order_id and r.audience = 'customer') >= $1",
    )
    .bind(NOTIFICATIONS_PER_ORDER)
    .fetch_one(pool)
    .await?;
    Ok((placed, done))
}

/// Messages not yet published, over every worker's outbox.
pub(crate) async fn outbox_pending(pool: &PgPool) -> anyhow::Result<i64> {
    let mut total = 0;
    for schema in SCHEMAS {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from {schema}.outbox where published_at is null"
        )))
        .fetch_one(pool)
        .await?;
        total += n;
    }
    Ok(total)
}

/// Every invariant, for a load of `orders` orders; `queues` are the broker's depths of the
/// scenario's queues (name, messages).
pub(crate) async fn all(
    pool: &PgPool,
    database_url: &str,
    orders: i64,
    queues: &[(String, u64)],
    namespace: &str,
) -> anyhow::Result<Vec<Verdict>> {
    let mut verdicts = vec![
        end_state(pool, orders).await?,
        inventory(database_url).await?,
        invoice_numbers(pool).await?,
        one_invoice_per_request(pool).await?,
        notifications(pool).await?,
        duplicate_effects(pool).await?,
    ];
    let pending = outbox_pending(pool).await?;
    verdicts.push(Verdict {
        name: "every outbox published (pending 0)",
        problems: if pending == 0 {
            Vec::new()
        } else {
            vec![format!("{pending} outbox rows not published")]
        },
    });
    verdicts.push(Verdict {
        name: "work, retry and dead-letter queues empty",
        problems: queues_not_empty(queues, namespace),
    });
    Ok(verdicts)
}

async fn end_state(pool: &PgPool, orders: i64) -> anyhow::Result<Verdict> {
    let mut problems = Vec::new();
    let by_status: Vec<(String, i64)> =
        sqlx::query_as("select status, count(*) from orders.orders group by 1 order by 1")
            .fetch_all(pool)
            .await?;
    let total: i64 = by_status.iter().map(|(_, n)| n).sum();
    if total != orders {
        problems.push(format!(
            "{total} orders known to the orders worker, {orders} placed"
        ));
    }
    for (status, n) in &by_status {
        if status != "completed" {
            problems.push(format!("{n} orders {status}"));
        }
    }
    let rejected: i64 = sqlx::query_scalar("select count(*) from orders.rejected_orders")
        .fetch_one(pool)
        .await?;
    if rejected > 0 {
        problems.push(format!("{rejected} orders rejected"));
    }
    let (_, done) = progress(pool).await?;
    if done != orders {
        problems.push(format!(
            "{done} of {orders} orders completed, invoiced and notified"
        ));
    }
    Ok(Verdict {
        name: "every order reached its end state (completed, invoiced, notified)",
        problems,
    })
}

async fn inventory(database_url: &str) -> anyhow::Result<Verdict> {
    // The check is the inventory worker's own, written for its session (schema on the path).
    let pool = orderly_runtime::db::connect(database_url, orderly_inventory::NAME, 1).await?;
    let mut conn = pool.acquire().await?;
    let problems = orderly_inventory::consistency_check(&mut conn).await?;
    drop(conn);
    pool.close().await;
    Ok(Verdict {
        name: "`inventory check` passes (stock = its ledger, reservations = open orders; the schema forbids overselling)",
        problems,
    })
}

async fn invoice_numbers(pool: &PgPool) -> anyhow::Result<Verdict> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("select store_id, number from invoicing.invoices")
            .fetch_all(pool)
            .await?;
    let mut series: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (store, number) in rows {
        series.entry(store).or_default().push(number);
    }
    let mut problems = Vec::new();
    for (store, numbers) in series {
        problems.extend(
            gaps_and_duplicates(&numbers)
                .into_iter()
                .map(|p| format!("{store}: {p}")),
        );
    }
    Ok(Verdict {
        name: "invoice numbers per series are 1..N, no gap, no duplicate",
        problems,
    })
}

/// The problems of one store's invoice numbers: grouped into series by what precedes their
/// running number (`RE-2026-` of `RE-2026-000042`), each series must be exactly 1..N.
pub(crate) fn gaps_and_duplicates(numbers: &[String]) -> Vec<String> {
    let mut series: BTreeMap<&str, Vec<u64>> = BTreeMap::new();
    let mut problems = Vec::new();
    for number in numbers {
        let digits = number.len()
            - number
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .count();
        match number[digits..].parse() {
            Ok(n) => series.entry(&number[..digits]).or_default().push(n),
            Err(_) => problems.push(format!("`{number}` has no running number")),
        }
    }
    for (prefix, mut taken) in series {
        taken.sort_unstable();
        let mut expected = 1;
        for pair in taken.windows(2) {
            if pair[0] == pair[1] {
                problems.push(format!("`{prefix}` {} issued twice", pair[0]));
            }
        }
        taken.dedup();
        for n in taken {
            if n != expected {
                problems.push(format!(
                    "`{prefix}` missing {}{}",
                    expected,
                    if n > expected + 1 {
                        format!("..{}", n - 1)
                    } else {
                        String::new()
                    }
                ));
            }
            expected = n + 1;
        }
    }
    problems
}

async fn one_invoice_per_request(pool: &PgPool) -> anyhow::Result<Verdict> {
    let (requests, invoices, orders): (i64, i64, i64) = sqlx::query_as(
        "select (select count(*) from fulfillment.invoice_requests),
                (select count(*) from invoicing.invoices),
                (select count(distinct order_id) from invoicing.invoices)",
    )
    .fetch_one(pool)
    .await?;
    let mut problems = Vec::new();
    if requests != invoices {
        problems.push(format!("{requests} invoice requests, {invoices} invoices"));
    }
    if orders != invoices {
        problems.push(format!("{invoices} invoices for {orders} orders"));
    }
    Ok(Verdict {
        name: "one invoice per request, one per order",
        problems,
    })
}

async fn notifications(pool: &PgPool) -> anyhow::Result<Verdict> {
    let counts: Vec<(i64, i64)> = sqlx::query_as(
        "select n, count(*) from (
           select o.order_id, count(r.request_id) as n
             from orders.orders o
             left join notifications.requests r
               on r.order_id = o.order_id and r.audience = 'customer'
            group by o.order_id) per_order
          group by n order by n",
    )
    .fetch_all(pool)
    .await?;
    let mut problems: Vec<String> = counts
        .into_iter()
        .filter(|(n, _)| *n != NOTIFICATIONS_PER_ORDER)
        .map(|(n, orders)| format!("{orders} orders got {n} customer notifications"))
        .collect();
    if !problems.is_empty() {
        // Why, for the operator reading the report: what the worker suppressed for those
        // orders, by event and reason.
        let why: Vec<(String, String, i64)> = sqlx::query_as(
            "select s.event, s.reason, count(*) from notifications.suppressions s
              where s.order_id in (
                select o.order_id from orders.orders o
                  left join notifications.requests r
                    on r.order_id = o.order_id and r.audience = 'customer'
                 group by o.order_id having count(r.request_id) <> $1)
              group by 1, 2 order by 3 desc limit 5",
        )
        .bind(NOTIFICATIONS_PER_ORDER)
        .fetch_all(pool)
        .await?;
        problems.extend(
            why.into_iter()
                .map(|(event, reason, n)| format!("{n}× {event} suppressed: {reason}")),
        );
    }
    Ok(Verdict {
        name: "every order got exactly its 4 customer notifications",
        problems,
    })
}

/// No effect twice: no worker wrote two outbox messages of the same type with the same
/// payload for the same cause (a handler run twice for one message would).
async fn duplicate_effects(pool: &PgPool) -> anyhow::Result<Verdict> {
    let mut problems = Vec::new();
    for schema in SCHEMAS {
        let twice: Vec<(String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "select message_type, count(*) from (
               select message_type from {schema}.outbox
                where body ? 'causation_id'
                group by body->>'causation_id', message_type, routing_key, body->'payload'
               having count(*) > 1) d
              group by 1 order by 1"
        )))
        .fetch_all(pool)
        .await?;
        problems.extend(
            twice
                .into_iter()
                .map(|(t, n)| format!("{schema}: {n} causes published {t} twice")),
        );
    }
    Ok(Verdict {
        name: "no duplicate effect per (cause, message) in any worker's outbox",
        problems,
    })
}

/// The scenario's queues that still hold messages, except the outside systems' own (the
/// notification system, marketplace connectors and merchant feed consume those; nobody does
/// in the suite). The warehouse queue is the simulated carrier's and must be empty.
pub(crate) fn queues_not_empty(queues: &[(String, u64)], namespace: &str) -> Vec<String> {
    let outside = [
        "out.notification-system",
        "out.marketplace",
        "out.merchant-events",
    ];
    queues
        .iter()
        .filter(|(name, messages)| {
            let local = name
                .strip_prefix(namespace)
                .and_then(|n| n.strip_prefix('.'))
                .unwrap_or(name);
            *messages > 0 && !outside.contains(&local)
        })
        .map(|(name, messages)| format!("{name}: {messages} messages"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numbers(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_complete_series_has_no_problem() {
        let n = numbers(&[
            "RE-2026-000002",
            "RE-2026-000001",
            "RE-2026-000003",
            "NL-F-2026-000001",
        ]);
        assert!(gaps_and_duplicates(&n).is_empty());
    }

    #[test]
    fn a_gap_a_duplicate_and_a_late_start_are_named() {
        let n = numbers(&[
            "RE-2026-000001",
            "RE-2026-000002",
            "RE-2026-000002",
            "RE-2026-000005",
            "GS-2026-000002",
        ]);
        assert_eq!(
            gaps_and_duplicates(&n),
            vec![
                "`GS-2026-` missing 1",
                "`RE-2026-` 2 issued twice",
                "`RE-2026-` missing 3..4",
            ]
        );
    }

    #[test]
    fn a_number_without_digits_is_a_problem() {
        assert_eq!(
            gaps_and_duplicates(&numbers(&["RE-"])),
            vec!["`RE-` has no running number"]
        );
    }

    #[test]
    fn outside_queues_may_hold_messages_but_the_warehouse_may_not() {
        let q = vec![
            ("chaos-x.orders".to_owned(), 0),
            ("chaos-x.orders.dlq".to_owned(), 1),
            ("chaos-x.out.notification-system".to_owned(), 40),
            ("chaos-x.out.warehouse".to_owned(), 2),
        ];
        assert_eq!(
            queues_not_empty(&q, "chaos-x"),
            vec![
                "chaos-x.orders.dlq: 1 messages",
                "chaos-x.out.warehouse: 2 messages"
            ]
        );
    }
}
