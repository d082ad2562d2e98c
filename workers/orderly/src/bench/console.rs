//! The admin console's pages on the operations benchmark's million orders: a staff member
//! signs in as a browser would (the sign-in form's double-submit cookie, then the session
//! cookie), and each page is asked for `requests` times, one at a time: p50, p99 and the
//! page's weight with its stylesheet (issue 16: p99 < 50 ms, under 200 KB).

use std::time::Instant;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use sqlx::PgPool;

/// The password the benchmark's staff member signs in with.
const PASSWORD: &str = "bench-console-password";

/// One page's figures.
pub(crate) struct Page {
    pub(crate) what: String,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    /// The HTML and the stylesheet, bytes.
    pub(crate) bytes: usize,
}

/// The value of cookie `name` among a response's `Set-Cookie` headers.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let (pair, _) = v.split_once(';').unwrap_or((v, ""));
            let (n, value) = pair.split_once('=')?;
            (n.trim() == name && !value.is_empty()).then(|| value.to_owned())
        })
}

/// Signs `email` in; the session cookie's value.
async fn sign_in(http: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<String> {
    let form = http.get(format!("{base}/admin/sign-in")).send().await?;
    let token = set_cookie(&form, "orderly_console_sign_in")
        .ok_or_else(|| anyhow::anyhow!("the sign-in form set no cookie"))?;
    let answer = http
        .post(format!("{base}/admin/sign-in"))
        .header(COOKIE, format!("orderly_console_sign_in={token}"))
        .form(&[
            ("sign_in", token.as_str()),
            ("next", "/admin/orders"),
            ("email", email),
            ("password", PASSWORD),
        ])
        .send()
        .await?;
    anyhow::ensure!(
        answer.status().is_redirection() && answer.headers().contains_key(LOCATION),
        "sign-in answered {}",
        answer.status()
    );
    set_cookie(&answer, "orderly_console")
        .ok_or_else(|| anyhow::anyhow!("the sign-in set no session cookie"))
}

/// Each page `requests` times (an order's page: `requests` sampled orders).
pub(crate) async fn pages(
    base: &str,
    pool: &PgPool,
    email: &str,
    store: &str,
    requests: usize,
) -> anyhow::Result<Vec<Page>> {
    orderly_api::staff::set_password(pool, email, PASSWORD).await?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let session = sign_in(&http, base, email).await?;
    let cookie = format!("orderly_console={session}");
    let css = http
        .get(format!("{base}/admin/sign-in"))
        .send()
        .await?
        .text()
        .await?
        .split("href=\"")
        .find_map(|rest| rest.split('"').next().filter(|h| h.ends_with(".css")))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("no stylesheet linked"))?;
    let css_bytes = http
        .get(format!("{base}{css}"))
        .send()
        .await?
        .bytes()
        .await?
        .len();

    let sampled = orderly_api::bench::sample(pool, u32::try_from(requests).unwrap_or(100)).await?;
    let orders: Vec<String> = sampled
        .iter()
        .map(|o| format!("/admin/orders/{}", o.order_id))
        .collect();
    let list = |query: String| vec![query; requests];
    let asked: Vec<(String, Vec<String>)> = vec![
        ("orders, newest first".into(), list("/admin/orders".into())),
        (
            format!("orders of {store}, completed"),
            list(format!("/admin/orders?store={store}&status=completed")),
        ),
        (
            "orders, free text (a customer's surname)".into(),
            list("/admin/orders?q=Schneider".into()),
        ),
        ("an order (sampled)".into(), orders),
        ("exceptions queue".into(), list("/admin/exceptions".into())),
        (
            "analytics, last 30 days".into(),
            list("/admin/analytics".into()),
        ),
    ];
    eprintln!("console pages, {requests} of each...");
    let mut out = Vec::new();
    for (what, paths) in asked {
        let mut millis = Vec::with_capacity(paths.len());
        let mut bytes = 0;
        for path in &paths {
            let started = Instant::now();
            let response = http
                .get(format!("{base}{path}"))
                .header(COOKIE, &cookie)
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            let body = response.bytes().await?;
            millis.push(started.elapsed().as_secs_f64() * 1000.0);
            bytes = bytes.max(body.len());
        }
        millis.sort_by(f64::total_cmp);
        let page = Page {
            p50: crate::bench::percentile(&millis, 50.0),
            p99: crate::bench::percentile(&millis, 99.0),
            bytes: bytes + css_bytes,
            what,
        };
        eprintln!(
            "  {}: p50 {:.1} ms, p99 {:.1} ms, {} bytes",
            page.what, page.p50, page.p99, page.bytes
        );
        out.push(page);
    }
    Ok(out)
}
