//! The admin API's rate limits over real HTTP: a token that bursts beyond its limit gets 429
//! problems with `Retry-After` while another token is served; requests that do not
//! authenticate are counted per address, and an address over its limit is refused whatever
//! token it sends (so guessing tokens runs at that rate); the runtime's `/healthz` and
//! `/metrics` answer throughout. The storefronts' customers are counted the same way, per
//! customer whichever of their tokens they send.
//!
//! The api worker runs alone here, with limits small enough to reach in a few requests:
//! 1 request per second per token with a burst of 3, and one unauthenticated request per
//! 100 s per address with a burst of 4 (so nothing refills while the test runs).

use std::time::{Duration, Instant};

use orderly_runtime::testing::World;
use serde_json::Value;

const TOKEN_BURST: u32 = 3;
const ADDRESS_BURST: u32 = 4;

/// Status, `Retry-After` and body of a GET with `token`.
async fn get(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> anyhow::Result<(u16, Option<String>, Value)> {
    let mut request = http.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await?;
    let status = answer.status().as_u16();
    let retry_after = answer
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = serde_json::from_slice(&answer.bytes().await?).unwrap_or(Value::Null);
    Ok((status, retry_after, body))
}

/// A 429 as the API promises it: problem+json, and `Retry-After` in whole seconds, at least 1.
fn assert_too_many(
    what: &str,
    (status, retry_after, body): &(u16, Option<String>, Value),
) -> anyhow::Result<u64> {
    anyhow::ensure!(*status == 429, "{what}: {status} {body}");
    anyhow::ensure!(
        body["type"] == "urn:orderly:api:too-many-requests" && body["status"] == 429,
        "{what}: {body}"
    );
    let seconds: u64 = retry_after
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("{what}: no Retry-After"))?
        .parse()?;
    anyhow::ensure!(seconds >= 1, "{what}: Retry-After {seconds}");
    Ok(seconds)
}

#[tokio::test]
async fn a_burst_beyond_the_limit_is_refused_with_retry_after_and_other_tokens_are_served()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let mut host = world.host();
    let settings = orderly_api::ApiSettings {
        rate_per_second: 1.0,
        rate_burst: TOKEN_BURST,
        address_rate_per_second: 0.01,
        address_rate_burst: ADDRESS_BURST,
        ..orderly_api::ApiSettings::default()
    };
    let api = orderly_api::start(&mut host, settings).await?;
    let health = host.serve_http().await?;
    let staff_db = world.pool(orderly_api::NAME).await?;
    let mut tokens = Vec::new();
    for email in ["ada@example.com", "grace@example.com"] {
        orderly_api::staff::add(&staff_db, email, "order_admin", &[]).await?;
        tokens.push(
            orderly_api::staff::issue_token(&staff_db, email, 1)
                .await?
                .token,
        );
    }
    let http = reqwest::Client::new();
    let orders = format!("http://{api}/api/v1/admin/orders");

    let result = async {
        // Token A: its burst is served, then 429s. Requests take milliseconds, so at most
        // one more may have refilled at 1 per second while they ran.
        let started = Instant::now();
        let mut served = 0u32;
        let mut refused = None;
        for _ in 0..(TOKEN_BURST + 5) {
            let answer = get(&http, &orders, Some(&tokens[0])).await?;
            match answer.0 {
                200 => served += 1,
                _ => {
                    refused = Some(answer);
                    break;
                }
            }
        }
        let refilled = started.elapsed().as_secs() as u32 + 1;
        let refused = refused.ok_or_else(|| anyhow::anyhow!("token A was never refused"))?;
        assert_too_many("token A over its burst", &refused)?;
        anyhow::ensure!(
            (TOKEN_BURST..=TOKEN_BURST + refilled).contains(&served),
            "token A was served {served} requests before its 429"
        );

        // Token B has its own budget.
        let other = get(&http, &orders, Some(&tokens[1])).await?;
        anyhow::ensure!(other.0 == 200, "token B: {} {}", other.0, other.2);

        // The address has not been counted by authenticated requests: its burst of requests
        // that do not authenticate is 401, then 429.
        for n in 0..ADDRESS_BURST {
            let guess = get(&http, &orders, Some("oly_guessed-token-guessed-token")).await?;
            anyhow::ensure!(guess.0 == 401, "guess {n}: {} {}", guess.0, guess.2);
        }
        let over = get(&http, &orders, Some("oly_guessed-token-guessed-token")).await?;
        let wait = assert_too_many("a guess over the address's burst", &over)?;
        anyhow::ensure!(
            wait > 1,
            "the address refills once per 100 s, not in {wait} s"
        );

        // Barred: a right token from that address is refused too (a guesser learns nothing),
        // and so is the public document.
        let right = get(&http, &orders, Some(&tokens[1])).await?;
        assert_too_many("a valid token from a barred address", &right)?;
        let document = get(&http, &format!("http://{api}/api/v1/openapi.json"), None).await?;
        assert_too_many("the document from a barred address", &document)?;

        // The runtime's own endpoints are another server: not limited.
        for path in ["/healthz", "/metrics"] {
            let answer = http.get(format!("http://{health}{path}")).send().await?;
            anyhow::ensure!(answer.status() == 200, "{path}: {}", answer.status());
        }
        Ok(())
    }
    .await;
    host.stop(Duration::from_secs(5)).await;
    staff_db.close().await;
    world.cleanup().await?;
    result
}

/// Customers are limited like staff: per customer (every token the storefront mints for them
/// shares one budget), and a customer token that does not authenticate counts against the
/// address, which is then barred whatever it sends.
#[tokio::test]
async fn a_customer_is_limited_whichever_token_and_forged_customer_tokens_bar_the_address()
-> anyhow::Result<()> {
    let world = World::new().await?;
    let mut host = world.host();
    let settings = orderly_api::ApiSettings {
        rate_per_second: 0.01,
        rate_burst: TOKEN_BURST,
        address_rate_per_second: 0.01,
        address_rate_burst: ADDRESS_BURST,
        ..orderly_api::ApiSettings::default()
    };
    let api = orderly_api::start(&mut host, settings).await?;
    let db = world.pool(orderly_api::NAME).await?;
    orderly_api::secrets::rotate(&db, "shop-de", chrono::Duration::hours(1)).await?;
    let mint = |customer: &'static str, minutes: u32| {
        let db = db.clone();
        async move {
            anyhow::Ok(
                orderly_api::secrets::customer_token(&db, "shop-de", customer, None, minutes)
                    .await?
                    .token,
            )
        }
    };
    let (anna, anna_again, ben) = (
        mint("C-ANNA", 10).await?,
        mint("C-ANNA", 11).await?,
        mint("C-BEN", 10).await?,
    );
    let http = reqwest::Client::new();
    let orders = format!("http://{api}/api/v1/store/customer-orders");

    let result = async {
        anyhow::ensure!(anna != anna_again, "two tokens of one customer");
        // Anna's burst, spent with her first token; nothing refills at 1 per 100 s.
        for n in 0..TOKEN_BURST {
            let answer = get(&http, &orders, Some(&anna)).await?;
            anyhow::ensure!(answer.0 == 200, "request {n}: {} {}", answer.0, answer.2);
        }
        assert_too_many(
            "Anna over her burst",
            &get(&http, &orders, Some(&anna)).await?,
        )?;
        // Her other token has no budget of its own; Ben has his.
        assert_too_many(
            "Anna's other token",
            &get(&http, &orders, Some(&anna_again)).await?,
        )?;
        let other = get(&http, &orders, Some(&ben)).await?;
        anyhow::ensure!(other.0 == 200, "Ben: {} {}", other.0, other.2);

        // Forged customer tokens: 401 for the address's burst, then 429, and then even Ben's
        // valid token from that address is refused.
        let last = if ben.ends_with('A') { "B" } else { "A" };
        let forged = format!("{}{last}", &ben[..ben.len() - 1]);
        for n in 0..ADDRESS_BURST {
            let guess = get(&http, &orders, Some(&forged)).await?;
            anyhow::ensure!(guess.0 == 401, "guess {n}: {} {}", guess.0, guess.2);
        }
        assert_too_many(
            "a forged token over the address's burst",
            &get(&http, &orders, Some(&forged)).await?,
        )?;
        assert_too_many(
            "a valid customer token from a barred address",
            &get(&http, &orders, Some(&ben)).await?,
        )?;
        Ok(())
    }
    .await;
    host.stop(Duration::from_secs(5)).await;
    db.close().await;
    world.cleanup().await?;
    result
}
