//! The admin console in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `scripts/services` installs) driven over WebDriver by
//! `fantoccini`, against every worker on the real broker and database, with orders placed
//! by the simulated storefront and marketplace connector. The browser signs in, filters,
//! opens an order, cancels it through the confirmation and waits for the worker's answer,
//! and resolves an exception; another browser session, as an account manager and as the
//! fulfillment team, sees only what their role and stores allow, and forged form posts
//! (a valid session and form token, an action the role lacks; or no form token) are refused
//! by the server.
//!
//! A screenshot of every page is written to `target/console-screenshots/` (at 1280 px, and
//! the list and an order at phone width). Without Chromium or its driver the tests fail,
//! saying to run `scripts/services`: they never pass by skipping.

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client as Browser, ClientBuilder, Locator, elements::Element};
use hyper_util::client::legacy::connect::HttpConnector;
use orderly::sim::{self, Publisher};
use orderly_runtime::{
    Host,
    testing::{World, wait_for, wait_until},
};
use orderly_tests::http::Client;
use rand::{SeedableRng, rngs::StdRng};
use serde_json::Value;
use sqlx::PgPool;

const DEADLINE: Duration = Duration::from_secs(90);
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const PASSWORD: &str = "console-test-password";
/// The console's stylesheet, as the api worker compiles it in.
const STYLESHEET: &str = include_str!("../../workers/api/src/http/console/style.css");

/// A chromedriver process on a free port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    /// Starts chromedriver, or fails saying how to install it.
    async fn start() -> anyhow::Result<Self> {
        for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
            anyhow::ensure!(
                std::path::Path::new(path).exists(),
                "{path} is missing: run scripts/services (it installs the Debian package {package}); \
                 the console's browser tests cannot run without it"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let driver = Self { child, port };
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        wait_until(
            "chromedriver listening",
            Duration::from_secs(20),
            || async { Ok(tokio::net::TcpStream::connect(addr).await.is_ok()) },
        )
        .await?;
        Ok(driver)
    }

    /// A new headless Chromium at 1280 × 900.
    async fn browser(&self) -> anyhow::Result<Browser> {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                         "--disable-gpu", "--window-size=1280,900", "--lang=en-US",
                         "--hide-scrollbars"],
            }),
        );
        Ok(ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await?)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the screenshots go: `target/console-screenshots/` of this workspace (or of
/// `CARGO_TARGET_DIR`).
fn screenshots() -> anyhow::Result<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The api worker's settings for the tests: no rate limits (the tests poll), and the
/// console over plain HTTP on loopback.
fn settings() -> orderly_api::ApiSettings {
    orderly_api::ApiSettings {
        rate_per_second: 0.0,
        address_rate_per_second: 0.0,
        console_insecure_http: true,
        ..orderly_api::ApiSettings::default()
    }
}

/// One test's Orderly: its own database and namespace, every worker, the API's address.
struct Orderly {
    world: World,
    host: Host,
    publisher: Publisher,
    api: SocketAddr,
    staff_db: PgPool,
    rng: StdRng,
    client: Client,
    /// An Order Admin's API token: the tests' oracle (what the API says), beside the pages.
    oracle: String,
}

impl Orderly {
    async fn start() -> anyhow::Result<Self> {
        let world = World::new().await?;
        let mut host = Host::new(world.settings.clone().with_section("api", settings()));
        let running = orderly::workers::start_all(&mut host).await?;
        let api = running
            .iter()
            .find(|w| w.name == orderly_api::NAME)
            .and_then(|w| w.listening)
            .ok_or_else(|| anyhow::anyhow!("the api worker did not say where it listens"))?;
        let publisher = Publisher::new(&world.connection, world.names.clone()).await?;
        sim::seed(&publisher, 1).await?;
        sim::store_settings(&publisher).await?;
        sim::wait_for_catalog(&world.settings.database_url, DEADLINE).await?;
        let staff_db = world.pool(orderly_api::NAME).await?;
        orderly_api::staff::add(&staff_db, "oracle@example.com", "order_admin", &[]).await?;
        let oracle = orderly_api::staff::issue_token(&staff_db, "oracle@example.com", 1)
            .await?
            .token;
        Ok(Self {
            world,
            host,
            publisher,
            api,
            staff_db,
            rng: StdRng::seed_from_u64(16),
            client: Client::new(api),
            oracle,
        })
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.host.stop(Duration::from_secs(5)).await;
        self.staff_db.close().await;
        self.world.cleanup().await
    }

    /// A staff member with `role`, limited to `stores`, with the console password, set as
    /// `orderly staff password` sets it.
    async fn staff(&self, email: &str, role: &str, stores: &[&str]) -> anyhow::Result<()> {
        let stores: Vec<String> = stores.iter().map(|s| (*s).to_owned()).collect();
        orderly_api::staff::add(&self.staff_db, email, role, &stores).await?;
        orderly_api::staff::set_password(&self.staff_db, email, PASSWORD).await?;
        Ok(())
    }

    /// Places a storefront order (`shop-de`) or a marketplace one (`bol-nl`) of one
    /// product; with `gtin`, the marketplace's line carries that GTIN instead.
    async fn place(
        &mut self,
        external_id: &str,
        marketplace: bool,
        gtin: Option<&str>,
    ) -> anyhow::Result<()> {
        let product = product()?;
        let mut order =
            sim::order_placed(&mut self.rng, external_id, marketplace, &[(product, 1)], 1);
        if let Some(gtin) = gtin {
            order["payload"]["lines"][0]["gtin"] = Value::String(gtin.to_owned());
        }
        self.publisher.send(&order).await
    }

    /// The order with `external_id` once the API lists it with `status`; its id. (An order
    /// accepted is listed in its final place: `placed_at` comes with `order.accepted`.)
    async fn order_in(&self, external_id: &str, status: &str) -> anyhow::Result<String> {
        let path = format!("/api/v1/admin/orders?q={external_id}");
        let find = |body: &Value| -> Option<String> {
            body["orders"].as_array()?.iter().find_map(|o| {
                (o["external_order_id"] == external_id && o["status"] == status)
                    .then(|| o["order_id"].as_str().map(str::to_owned))
                    .flatten()
            })
        };
        wait_until(&format!("{external_id} {status}"), DEADLINE, || async {
            Ok(find(&self.client.get(Some(&self.oracle), &path).await?.json).is_some())
        })
        .await?;
        find(&self.client.get(Some(&self.oracle), &path).await?.json)
            .ok_or_else(|| anyhow::anyhow!("{external_id} vanished"))
    }

    /// The order's detail as the API gives it.
    async fn order(&self, order_id: &str) -> anyhow::Result<Value> {
        Ok(self
            .client
            .get(
                Some(&self.oracle),
                &format!("/api/v1/admin/orders/{order_id}"),
            )
            .await?
            .json)
    }

    /// A count from any schema, for what only the owning worker knows.
    async fn count(&self, sql: &str, order_id: &str) -> anyhow::Result<i64> {
        let id: uuid::Uuid = order_id.parse()?;
        Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
            .bind(id)
            .fetch_one(&self.staff_db)
            .await?)
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api)
    }
}

fn product() -> anyhow::Result<sim::Product> {
    sim::catalog()
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("an empty catalog"))
}

/// A browser session on the console, with its screenshots.
struct Page<'a> {
    browser: &'a Browser,
    orderly: &'a Orderly,
    dir: PathBuf,
}

impl Page<'_> {
    async fn goto(&self, path: &str) -> anyhow::Result<()> {
        Ok(self.browser.goto(&self.orderly.url(path)).await?)
    }

    /// The path (and query) the browser shows.
    async fn path(&self) -> anyhow::Result<String> {
        let url = self.browser.current_url().await?;
        Ok(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// The visible text of the page's `<main>`.
    async fn main_text(&self) -> anyhow::Result<String> {
        Ok(self
            .browser
            .find(Locator::Css("main"))
            .await?
            .text()
            .await?)
    }

    /// Writes `name.png`: the whole page (the window stretched to its height for the
    /// shot, then put back). Every page shot is also checked for its weight: its HTML and
    /// the stylesheet (the page's only other resource) under 200 KB together.
    async fn shot(&self, name: &str) -> anyhow::Result<()> {
        let html = self.browser.source().await?.len();
        anyhow::ensure!(
            html + STYLESHEET.len() < 200_000,
            "{name}: {html} bytes of HTML and {} of stylesheet",
            STYLESHEET.len()
        );
        let (width, height) = self.browser.get_window_size().await?;
        let (width, height) = (u32::try_from(width)?, u32::try_from(height)?);
        let page_height = self
            .browser
            .execute(
                "return document.documentElement.scrollHeight + window.outerHeight - window.innerHeight;",
                vec![],
            )
            .await?
            .as_u64()
            .and_then(|h| u32::try_from(h).ok())
            .unwrap_or(height);
        self.browser
            .set_window_size(width, page_height.clamp(height, 6000))
            .await?;
        let png = self.browser.screenshot().await;
        self.browser.set_window_size(width, height).await?;
        std::fs::write(self.dir.join(format!("{name}.png")), png?)?;
        Ok(())
    }

    /// Types into the field with `id`.
    async fn fill(&self, id: &str, value: &str) -> anyhow::Result<()> {
        let field = self.browser.find(Locator::Id(id)).await?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    /// Clicks what `css` finds (a checkbox: no page is loaded).
    async fn click(&self, css: &str) -> anyhow::Result<()> {
        Ok(self.browser.find(Locator::Css(css)).await?.click().await?)
    }

    /// Follows a command's page's link back to its order.
    async fn back_to_order(&self) -> anyhow::Result<()> {
        let link = self
            .browser
            .find(Locator::LinkText("← Back to the order"))
            .await?;
        self.open(link).await
    }

    /// Clicks `element` (a link, a form's button) and waits until the next page has
    /// loaded: the current document is marked first, so a page that reloads the same
    /// address (a refused sign-in) is told apart too. A click returns before the browser
    /// has left the page; reading it then would read the old one.
    async fn open(&self, element: Element) -> anyhow::Result<()> {
        self.browser
            .execute("document.documentElement.dataset.left = 'yes';", vec![])
            .await?;
        element.click().await?;
        wait_until("the next page loaded", DEADLINE, || async {
            let fresh = self
                .browser
                .execute(
                    "return document.readyState === 'complete' \
                       && document.documentElement.dataset.left === undefined;",
                    vec![],
                )
                .await;
            Ok(fresh.is_ok_and(|v| v == Value::Bool(true)))
        })
        .await
    }

    /// [`Self::open`] what `css` finds.
    async fn navigate(&self, css: &str) -> anyhow::Result<()> {
        let element = self.browser.find(Locator::Css(css)).await?;
        self.open(element).await
    }

    /// Signs in with the form, as a person would.
    async fn sign_in(&self, email: &str, password: &str) -> anyhow::Result<()> {
        self.goto("/admin/sign-in").await?;
        self.fill("email", email).await?;
        self.fill("password", password).await?;
        self.navigate("form[action='/admin/sign-in'] button[type=submit]")
            .await
    }

    async fn sign_out(&self) -> anyhow::Result<()> {
        self.navigate("form[action='/admin/sign-out'] button").await
    }

    /// Waits until the page's `<main>` text satisfies `done`, reloading it (a page that
    /// refreshes itself is read between refreshes; a read during one is "not yet").
    async fn wait_for_text(
        &self,
        what: &str,
        reload: bool,
        done: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let done = &done;
        wait_until(what, DEADLINE, || async move {
            if reload {
                self.browser.refresh().await?;
            }
            Ok(self.main_text().await.is_ok_and(|t| done(&t)))
        })
        .await?;
        self.main_text().await
    }

    /// The session cookie's value (it is `HttpOnly`: the page's script cannot read it,
    /// but the browser's driver can).
    async fn session_cookie(&self) -> anyhow::Result<String> {
        Ok(self
            .browser
            .get_named_cookie("orderly_console")
            .await?
            .value()
            .to_owned())
    }
}

/// A client that posts forms as a forger would: the session's cookie, no redirects
/// followed (so a refusal is seen as it is).
fn forger() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// The form token of the page at `url`, read with `cookie` as a page would show it.
async fn form_token(http: &reqwest::Client, url: &str, cookie: &str) -> anyhow::Result<String> {
    let html = http
        .get(url)
        .header("cookie", format!("orderly_console={cookie}"))
        .send()
        .await?
        .text()
        .await?;
    let start = html
        .find("name=\"csrf\" value=\"")
        .ok_or_else(|| anyhow::anyhow!("no form token on {url}: {html}"))?
        + "name=\"csrf\" value=\"".len();
    Ok(html[start..].chars().take_while(|c| *c != '"').collect())
}

/// Runs `test` with a browser, closing the browser whatever the outcome (the driver is
/// killed when dropped).
async fn with_browser<F, Fut>(driver: &Driver, test: F) -> anyhow::Result<()>
where
    F: FnOnce(Browser) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    let browser = driver.browser().await?;
    let result = test(browser.clone()).await;
    let closed = browser.close().await;
    result?;
    closed?;
    Ok(())
}

#[tokio::test]
async fn an_order_admin_signs_in_filters_opens_cancels_and_resolves_in_the_browser()
-> anyhow::Result<()> {
    let driver = Driver::start().await?;
    let mut orderly = Orderly::start().await?;
    orderly
        .staff("admin@example.com", "order_admin", &[])
        .await?;
    orderly.place("CON-1", false, None).await?;
    orderly.place("CON-2", false, None).await?;
    orderly.place("CON-BOL-1", true, None).await?;
    let new_gtin = sim::gtin("400638188888");
    orderly.place("CON-EX-1", true, Some(&new_gtin)).await?;
    let con1 = orderly.order_in("CON-1", "processing").await?;
    orderly.order_in("CON-2", "processing").await?;
    orderly.order_in("CON-BOL-1", "processing").await?;
    let held = orderly.order_in("CON-EX-1", "on_hold").await?;
    // A stock count the inventory worker refuses (a negative count): a dead letter with its
    // reason, for the operations page.
    let refused = sim::envelope(
        "inventory.adjusted",
        "wms",
        "berlin-1/MUG-BLU-350",
        serde_json::json!({"warehouse_id": "berlin-1", "sku": "MUG-BLU-350", "set_on_hand": -5,
                           "reason": "stock_count", "source": "wms",
                           "reference": "CON-DLQ-1", "as_of": chrono::Utc::now()}),
    );
    orderly
        .world
        .publish_raw("inventory.adjusted", &serde_json::to_vec(&refused)?)
        .await?;
    let world = &orderly.world;
    wait_until("the stock count dead-lettered", DEADLINE, || async {
        Ok(world.dead_letters("inventory").await?.len() == 1)
    })
    .await?;

    let dir = screenshots()?;
    let orderly_ref = &orderly;
    let (con1_ref, held_ref) = (con1.as_str(), held.as_str());
    with_browser(&driver, |browser| async move {
        let page = Page {
            browser: &browser,
            orderly: orderly_ref,
            dir,
        };

        // Signed out, a page leads to the sign-in form; a wrong password is refused there.
        page.goto("/admin/orders").await?;
        anyhow::ensure!(
            page.path().await?.starts_with("/admin/sign-in"),
            "{}",
            page.path().await?
        );
        page.shot("01-sign-in").await?;
        page.sign_in("admin@example.com", "not the password")
            .await?;
        let refused = page.main_text().await?;
        anyhow::ensure!(
            refused.contains("The e-mail or the password is not right"),
            "{refused}"
        );
        anyhow::ensure!(page.path().await?.starts_with("/admin/sign-in"));
        page.shot("02-sign-in-refused").await?;
        page.sign_in("admin@example.com", PASSWORD).await?;
        anyhow::ensure!(
            page.path().await? == "/admin/orders",
            "{}",
            page.path().await?
        );
        let all = page.main_text().await?;
        for external in ["CON-1", "CON-2", "CON-BOL-1", "CON-EX-1"] {
            anyhow::ensure!(all.contains(external), "{external} not listed: {all}");
        }
        page.shot("03-orders").await?;

        // Filtered to a store and a status with the form.
        page.fill("store", "shop-de").await?;
        browser
            .find(Locator::Id("status"))
            .await?
            .select_by_value("processing")
            .await?;
        page.navigate("form.filters button[type=submit]").await?;
        let path = page.path().await?;
        anyhow::ensure!(
            path.contains("store=shop-de") && path.contains("status=processing"),
            "{path}"
        );
        let filtered = page.main_text().await?;
        anyhow::ensure!(
            filtered.contains("CON-1") && filtered.contains("CON-2"),
            "{filtered}"
        );
        anyhow::ensure!(
            !filtered.contains("CON-BOL-1") && !filtered.contains("CON-EX-1"),
            "{filtered}"
        );
        page.shot("04-orders-filtered").await?;

        // Saved as a view, opened again from above the whole list, then deleted.
        page.fill("view-name", "DE in processing").await?;
        page.navigate("#save-view").await?;
        page.goto("/admin/orders").await?;
        page.navigate("#view-0").await?;
        let path = page.path().await?;
        anyhow::ensure!(
            path.contains("store=shop-de") && path.contains("status=processing"),
            "the view opens its filters: {path}"
        );
        let viewed = page.main_text().await?;
        anyhow::ensure!(
            viewed.contains("DE in processing")
                && viewed.contains("CON-2")
                && !viewed.contains("CON-BOL-1"),
            "{viewed}"
        );
        page.navigate("#delete-view-0").await?;
        let after = page.main_text().await?;
        anyhow::ensure!(
            !after.contains("DE in processing") && after.contains("None yet"),
            "{after}"
        );
        page.goto(&path).await?;
        // The export of the current filter: a CSV of the list's rows, for the session.
        let export = browser
            .find(Locator::Id("export"))
            .await?
            .attr("href")
            .await?
            .unwrap_or_default();
        anyhow::ensure!(
            export.contains("store=shop-de") && export.contains("status=processing"),
            "{export}"
        );
        let csv = forger()?
            .get(orderly_ref.url(&export))
            .header(
                "cookie",
                format!("orderly_console={}", page.session_cookie().await?),
            )
            .send()
            .await?;
        anyhow::ensure!(csv.status() == 200, "{}", csv.status());
        let csv = csv.text().await?;
        anyhow::ensure!(csv.contains("CON-1") && csv.contains("CON-2"), "{csv}");
        anyhow::ensure!(
            !csv.contains("CON-BOL-1") && !csv.contains("CON-EX-1"),
            "{csv}"
        );
        anyhow::ensure!(csv.lines().count() == 3, "a header and two rows: {csv}");

        // The order: its saga position and timeline.
        page.open(browser.find(Locator::LinkText("CON-1")).await?)
            .await?;
        anyhow::ensure!(page.path().await? == format!("/admin/orders/{con1_ref}"));
        let waiting = browser
            .find(Locator::Id("waiting-for"))
            .await?
            .text()
            .await?;
        let api_saga = orderly_ref.order(con1_ref).await?["saga"]["waiting_for"].clone();
        anyhow::ensure!(
            api_saga == waiting.as_str(),
            "page {waiting}, API {api_saga}"
        );
        let timeline = browser.find(Locator::Id("timeline")).await?.text().await?;
        anyhow::ensure!(
            timeline.contains("accepted") && timeline.contains("processing"),
            "{timeline}"
        );
        page.shot("05-order").await?;

        // Cancelled through the button and its confirmation; the command's page shows the
        // worker's answer when it arrives.
        page.navigate("#cancel").await?;
        anyhow::ensure!(page.path().await? == format!("/admin/orders/{con1_ref}/cancel"));
        page.shot("06-cancel-confirm").await?;
        page.fill("reason", "Kunde hat angerufen").await?;
        page.click("#confirm").await?;
        page.navigate("#confirm-cancel").await?;
        anyhow::ensure!(
            page.path().await?.starts_with("/admin/commands/"),
            "{}: {}",
            page.path().await?,
            page.main_text().await?
        );
        let outcome = page
            .wait_for_text("the cancellation applied", false, |t| t.contains("applied"))
            .await?;
        anyhow::ensure!(
            outcome.contains("cancel") && outcome.contains("admin@example.com"),
            "{outcome}"
        );
        page.shot("07-command-applied").await?;
        page.back_to_order().await?;
        let order = page
            .wait_for_text("the order shown cancelled", true, |t| {
                t.contains("cancelled")
            })
            .await?;
        anyhow::ensure!(
            order.contains("orders.cancel"),
            "the staff action on the timeline: {order}"
        );
        anyhow::ensure!(
            browser.find(Locator::Id("cancel")).await.is_err(),
            "no Cancel on a cancelled order"
        );
        page.shot("08-order-cancelled").await?;
        // Its reservation went back to stock (inventory's `stock.released`, seen by orders).
        let released =
            "select count(*) from orders.timeline where order_id = $1 and kind = 'stock_released'";
        wait_until("stock released", DEADLINE, || async {
            Ok(orderly_ref.count(released, con1_ref).await? == 1)
        })
        .await?;

        // The order on hold shows what it waits for and its unmatched line.
        page.goto(&format!("/admin/orders/{held_ref}")).await?;
        let on_hold = browser
            .find(Locator::Id("order-exceptions"))
            .await?
            .text()
            .await?;
        anyhow::ensure!(on_hold.contains("unknown_gtin"), "{on_hold}");
        let waiting = browser
            .find(Locator::Id("waiting-for"))
            .await?
            .text()
            .await?;
        anyhow::ensure!(waiting == "operator", "{waiting}");
        page.shot("08b-order-on-hold").await?;

        // The exception, resolved with "remember".
        page.goto("/admin/exceptions").await?;
        let queue = page.main_text().await?;
        anyhow::ensure!(queue.contains("CON-EX-1"), "{queue}");
        page.shot("09-exceptions").await?;
        // The SKU field offers the products the store's orders carried (CON-BOL-1's).
        let offered = browser
            .find(Locator::Css(&format!(
                "datalist#products-bol-nl option[value='{}']",
                product()?.sku
            )))
            .await?
            .prop("label")
            .await?
            .unwrap_or_default();
        anyhow::ensure!(offered.contains(product()?.title), "{offered}");
        // The whole catalog is searchable (the api's copy of `catalog.product_upserted`):
        // a product no order carried, found by a word of its title, offered to the form.
        let unordered = sim::catalog()
            .into_iter()
            .last()
            .ok_or_else(|| anyhow::anyhow!("an empty catalog"))?;
        let word = unordered
            .title
            .split_whitespace()
            .max_by_key(|w| w.len())
            .unwrap_or_default()
            .to_owned();
        page.fill("product", &word).await?;
        page.navigate("#catalog-search button[type=submit]").await?;
        let found = browser
            .find(Locator::Id("found-products"))
            .await?
            .text()
            .await?;
        anyhow::ensure!(found.contains(unordered.sku), "{word}: {found}");
        anyhow::ensure!(
            browser
                .find(Locator::Css(&format!(
                    "datalist#products-found option[value='{}']",
                    unordered.sku
                )))
                .await
                .is_ok(),
            "the find is offered to the SKU field"
        );
        page.shot("09b-exceptions-catalog-search").await?;
        let form = browser.find(Locator::Css("form.resolve")).await?;
        let action = form.attr("action").await?.unwrap_or_default();
        let exception_id = action
            .trim_start_matches("/admin/exceptions/")
            .trim_end_matches("/resolve")
            .to_owned();
        page.fill(&format!("sku-{exception_id}"), product()?.sku)
            .await?;
        page.click(&format!("#remember-{exception_id}")).await?;
        page.fill(&format!("note-{exception_id}"), "neue EAN")
            .await?;
        page.open(form.find(Locator::Css("button[type=submit]")).await?)
            .await?;
        let outcome = page
            .wait_for_text("the resolution applied", false, |t| t.contains("applied"))
            .await?;
        anyhow::ensure!(outcome.contains("resolve_exception"), "{outcome}");
        page.shot("10-resolution-applied").await?;
        page.goto("/admin/exceptions").await?;
        anyhow::ensure!(!page.main_text().await?.contains("CON-EX-1"));

        // A bulk action on the list's filter (shop-de, processing: CON-2 alone now), as a
        // job whose page shows its progress to completion.
        page.goto("/admin/orders?store=shop-de&status=processing")
            .await?;
        let listed = page.main_text().await?;
        anyhow::ensure!(
            listed.contains("CON-2") && !listed.contains("CON-1\n"),
            "{listed}"
        );
        page.navigate("#bulk").await?;
        let filter = browser
            .find(Locator::Id("bulk-filter"))
            .await?
            .text()
            .await?;
        anyhow::ensure!(
            filter.contains("shop-de") && filter.contains("processing"),
            "{filter}"
        );
        page.fill("bulk-text", "Bitte Adresse prüfen").await?;
        page.click("#bulk-confirm").await?;
        page.shot("11-bulk-form").await?;
        page.navigate("#bulk-start").await?;
        anyhow::ensure!(
            page.path().await?.starts_with("/admin/jobs/"),
            "{}",
            page.path().await?
        );
        let job = page
            .wait_for_text("the bulk job completed and answered", false, |t| {
                t.contains("completed") && t.contains("1 / 1") && !t.contains("Waiting for")
            })
            .await?;
        anyhow::ensure!(job.contains("applied\n1"), "{job}");
        page.shot("12-bulk-job").await?;

        // One order chosen on the list by its checkbox: a bulk job of exactly that order.
        page.goto("/admin/orders").await?;
        page.click("#choose-CON-2").await?;
        page.navigate("#bulk-chosen-start").await?;
        let chosen = browser
            .find(Locator::Id("bulk-chosen"))
            .await?
            .text()
            .await?;
        anyhow::ensure!(chosen.starts_with("1 "), "{chosen}");
        page.fill("bulk-text", "Einzeln ausgewählt").await?;
        page.click("#bulk-confirm").await?;
        page.navigate("#bulk-start").await?;
        let one = page
            .wait_for_text("the chosen order's job completed", false, |t| {
                t.contains("completed") && t.contains("1 / 1") && !t.contains("Waiting for")
            })
            .await?;
        anyhow::ensure!(one.contains("applied\n1"), "{one}");

        // Hold, then release, CON-2 from its page: each the API's command, on the timeline.
        page.goto("/admin/orders").await?;
        page.open(browser.find(Locator::LinkText("CON-2")).await?)
            .await?;
        page.fill("hold-reason", "Adresse unklar").await?;
        page.navigate("#hold").await?;
        page.wait_for_text("the hold applied", false, |t| t.contains("applied"))
            .await?;
        page.back_to_order().await?;
        let held = page
            .wait_for_text("the order shown held", true, |t| {
                t.contains("On hold by an operator") && t.contains("Release the hold")
            })
            .await?;
        anyhow::ensure!(
            held.contains("orders.hold") && held.contains("Adresse unklar"),
            "{held}"
        );
        page.shot("12b-order-held").await?;
        page.navigate("#release").await?;
        page.wait_for_text("the release applied", false, |t| t.contains("applied"))
            .await?;
        page.back_to_order().await?;

        let released = page
            .wait_for_text("the order shown released", true, |t| {
                t.contains("Put on hold")
            })
            .await?;
        anyhow::ensure!(released.contains("orders.release"), "{released}");

        // Nothing of CON-2 has left a warehouse: its delivery address is changed from the
        // form, filled with the current one (only the street and the city change).
        page.click("#change-address summary").await?;
        page.fill("address-line1", "Paketshop am Leopoldplatz")
            .await?;
        page.fill("address-line2", "").await?;
        page.fill("address-city", "Potsdam").await?;
        page.fill("address-reason", "Kundin rief an").await?;
        page.shot("12c-address-form").await?;
        page.navigate("#change-address-submit").await?;
        page.wait_for_text("the address change applied", false, |t| {
            t.contains("applied")
        })
        .await?;
        page.back_to_order().await?;
        let moved = page
            .wait_for_text("the order shown at its new address", true, |t| {
                t.contains("Paketshop am Leopoldplatz") && t.contains("Potsdam")
            })
            .await?;
        anyhow::ensure!(
            moved.contains("orders.change_address") && moved.contains("Kundin rief an"),
            "{moved}"
        );

        // The customer's messages: the confirmation listed, and sent again from its row.
        page.wait_for_text("the confirmation listed", true, |t| {
            t.contains("Messages to the customer") && t.contains("order.accepted")
        })
        .await?;
        page.navigate("#resend-0").await?;
        let resent = page
            .wait_for_text("the resend applied", false, |t| t.contains("applied"))
            .await?;
        anyhow::ensure!(resent.contains("resend"), "{resent}");

        // Analytics: today's orders as a bar of the server-drawn chart, and in the table.
        page.goto("/admin/analytics").await?;
        let bars = browser
            .find_all(Locator::Css("svg#orders-chart rect.bar"))
            .await?;
        anyhow::ensure!(!bars.is_empty(), "no bars");
        let figures = browser.find(Locator::Id("figures")).await?.text().await?;
        let today = chrono::Utc::now().date_naive().to_string();
        anyhow::ensure!(figures.contains(&today), "{figures}");
        page.shot("16-analytics").await?;

        // Operations: every queue with its consumers; the inventory's refused stock count
        // with the reason it gave. Replayed (it is refused again: back with its reason),
        // then purged.
        page.open(browser.find(Locator::LinkText("Operations")).await?)
            .await?;
        let ops = page.main_text().await?;
        anyhow::ensure!(
            ops.contains("inventory")
                && ops.contains("inventory.adjusted")
                && ops.contains("set_on_hand"),
            "{ops}"
        );
        anyhow::ensure!(!ops.contains("the worker is not running"), "{ops}");
        page.shot("17-operations").await?;
        page.click("#dead-inventory ~ form input[type=checkbox]")
            .await?;
        page.navigate("#replay-inventory").await?;
        page.wait_for_text("the replay reported", false, |t| t.contains("1 replayed"))
            .await?;
        let world = &orderly_ref.world;
        wait_until("refused again after the replay", DEADLINE, || async {
            Ok(world.dead_letters("inventory").await?.len() == 1)
        })
        .await?;
        page.goto("/admin/operations").await?;
        page.navigate("#purge-all-inventory").await?;
        page.wait_for_text("the purge reported", false, |t| t.contains("1 purged"))
            .await?;
        anyhow::ensure!(world.dead_letters("inventory").await?.is_empty());
        let after = page.main_text().await?;
        anyhow::ensure!(!after.contains("inventory.adjusted"), "{after}");
        let audited: i64 = sqlx::query_scalar(
            "select count(*) from audit_log where action in \
             ('operations.dead_letters.replay', 'operations.dead_letters.purge') \
             and staff_email = 'admin@example.com' and target = 'queue inventory'",
        )
        .fetch_one(&orderly_ref.staff_db)
        .await?;
        anyhow::ensure!(audited == 2, "{audited} audit entries");

        // Phone width: the list and an order fold into one column.
        browser.set_window_size(390, 844).await?;
        page.goto("/admin/orders").await?;
        page.shot("13-orders-phone").await?;
        page.goto(&format!("/admin/orders/{held_ref}")).await?;
        page.shot("14-order-phone").await?;
        browser.set_window_size(1280, 900).await?;

        // German labels, by the switch in the header.
        page.open(browser.find(Locator::LinkText("Deutsch")).await?)
            .await?;
        let german = page.main_text().await?;
        anyhow::ensure!(
            german.contains("Wo sie steht") && german.contains("Verlauf"),
            "{german}"
        );
        page.shot("15-order-german").await?;
        page.open(browser.find(Locator::LinkText("English")).await?)
            .await?;

        // Signed out, the session no longer opens pages.
        page.sign_out().await?;
        page.goto("/admin/orders").await?;
        anyhow::ensure!(
            page.path().await?.starts_with("/admin/sign-in"),
            "{}",
            page.path().await?
        );
        Ok(())
    })
    .await?;

    // The order resolved moves on; the next import of that GTIN is matched without a hold.
    orderly.order_in("CON-EX-1", "processing").await?;
    orderly.place("CON-EX-2", true, Some(&new_gtin)).await?;
    let second = orderly.order_in("CON-EX-2", "processing").await?;
    let detail = orderly.order(&second).await?;
    let was_held = detail["status_history"]
        .as_array()
        .is_some_and(|h| h.iter().any(|s| s["to"] == "on_hold"));
    assert!(!was_held, "{detail}");
    assert_eq!(detail["lines"][0]["sku"], product()?.sku, "{detail}");
    orderly.stop().await
}

#[tokio::test]
async fn staff_see_only_their_stores_and_actions_and_forged_or_tokenless_posts_are_refused()
-> anyhow::Result<()> {
    let driver = Driver::start().await?;
    let mut orderly = Orderly::start().await?;
    orderly
        .staff("am-de@example.com", "account_manager", &["shop-de"])
        .await?;
    orderly
        .staff("lead@example.com", "fulfillment_team", &[])
        .await?;
    orderly.place("AM-DE-1", false, None).await?;
    orderly.place("AM-NL-1", true, None).await?;
    orderly
        .place("AM-EX-1", true, Some(&sim::gtin("400638199999")))
        .await?;
    let de = orderly.order_in("AM-DE-1", "processing").await?;
    let nl = orderly.order_in("AM-NL-1", "processing").await?;
    orderly.order_in("AM-EX-1", "on_hold").await?;
    let exception_id = orderly
        .order(&orderly.order_in("AM-EX-1", "on_hold").await?)
        .await?["exceptions"][0]["exception_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let dir = screenshots()?;
    let http = forger()?;
    let orderly_ref = &orderly;
    let (de_ref, nl_ref, exception_ref, http_ref) =
        (de.as_str(), nl.as_str(), exception_id.as_str(), &http);
    with_browser(&driver, |browser| async move {
        let page = Page {
            browser: &browser,
            orderly: orderly_ref,
            dir,
        };

        // The account manager of shop-de: their store's orders only, even when asking for
        // another's; another store's order is "not found".
        page.sign_in("am-de@example.com", PASSWORD).await?;
        let list = page.main_text().await?;
        anyhow::ensure!(list.contains("AM-DE-1"), "{list}");
        anyhow::ensure!(
            !list.contains("AM-NL-1") && !list.contains("AM-EX-1"),
            "{list}"
        );
        page.shot("20-account-manager-orders").await?;
        page.goto("/admin/orders?store=bol-nl").await?;
        let other = page.main_text().await?;
        anyhow::ensure!(
            !other.contains("AM-NL-1") && other.contains("No orders match"),
            "{other}"
        );
        page.goto(&format!("/admin/orders/{nl_ref}")).await?;
        let hidden = page.main_text().await?;
        anyhow::ensure!(
            hidden.contains("No such order") && !hidden.contains("AM-NL-1"),
            "{hidden}"
        );
        // They may cancel their store's orders (the button is there), not resolve
        // exceptions (no form, and the queue shows none of another store's).
        page.goto(&format!("/admin/orders/{de_ref}")).await?;
        anyhow::ensure!(
            browser.find(Locator::Id("cancel")).await.is_ok(),
            "an account manager may cancel"
        );
        page.goto("/admin/exceptions").await?;
        let queue = page.main_text().await?;
        anyhow::ensure!(queue.contains("does not allow resolving"), "{queue}");
        anyhow::ensure!(browser.find(Locator::Css("form.resolve")).await.is_err());
        page.shot("21-account-manager-exceptions").await?;
        // No operations page for them: no link, and the page itself refuses.
        anyhow::ensure!(
            browser.find(Locator::LinkText("Operations")).await.is_err(),
            "an account manager has no operations link"
        );
        page.goto("/admin/operations").await?;
        let ops = page.main_text().await?;
        anyhow::ensure!(
            ops.contains("does not grant operations.manage") && !ops.contains("Dead letters"),
            "{ops}"
        );

        // A forged resolution with their session and a valid form token: refused by the
        // server (their role lacks it), nothing sent.
        let cookie = page.session_cookie().await?;
        let token = form_token(http_ref, &orderly_ref.url("/admin/orders"), &cookie).await?;
        let forged = http_ref
            .post(orderly_ref.url(&format!("/admin/exceptions/{exception_ref}/resolve")))
            .header("cookie", format!("orderly_console={cookie}"))
            .form(&[("csrf", token.as_str()), ("resolution", "remove_line")])
            .send()
            .await?;
        anyhow::ensure!(forged.status() == 403, "{}", forged.status());
        let body = forged.text().await?;
        anyhow::ensure!(body.contains("does not grant exceptions.resolve"), "{body}");
        // A cancellation of their own store's order without the form token: refused
        // before anything is decided.
        let tokenless = http_ref
            .post(orderly_ref.url(&format!("/admin/orders/{de_ref}/cancel")))
            .header("cookie", format!("orderly_console={cookie}"))
            .form(&[("reason", "forged"), ("confirm", "yes")])
            .send()
            .await?;
        anyhow::ensure!(tokenless.status() == 403, "{}", tokenless.status());
        anyhow::ensure!(
            tokenless
                .text()
                .await?
                .contains("The form was not accepted")
        );
        // With a wrong token too.
        let wrong = http_ref
            .post(orderly_ref.url(&format!("/admin/orders/{de_ref}/cancel")))
            .header("cookie", format!("orderly_console={cookie}"))
            .form(&[
                ("csrf", "0".repeat(64).as_str()),
                ("reason", "forged"),
                ("confirm", "yes"),
            ])
            .send()
            .await?;
        anyhow::ensure!(wrong.status() == 403, "{}", wrong.status());
        page.sign_out().await?;
        // Signed out, the session's cookie opens nothing any more.
        let replayed = http_ref
            .get(orderly_ref.url("/admin/orders"))
            .header("cookie", format!("orderly_console={cookie}"))
            .send()
            .await?;
        anyhow::ensure!(replayed.status() == 303, "{}", replayed.status());
        let to = replayed
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        anyhow::ensure!(to.starts_with("/admin/sign-in"), "{to}");

        // The fulfillment team may not cancel: no button, and a forged cancellation with a
        // valid session and form token is refused by the server.
        page.sign_in("lead@example.com", PASSWORD).await?;
        page.goto(&format!("/admin/orders/{de_ref}")).await?;
        anyhow::ensure!(
            browser.find(Locator::Id("cancel")).await.is_err(),
            "no Cancel for the fulfillment team"
        );
        let actions = browser
            .find(Locator::Css("section[aria-labelledby=actions]"))
            .await?
            .text()
            .await?;
        anyhow::ensure!(
            !actions.contains("Cancel") && actions.contains("Put on hold"),
            "the fulfillment team holds and notes, never cancels: {actions}"
        );
        page.shot("22-fulfillment-order").await?;
        let cookie = page.session_cookie().await?;
        let token = form_token(http_ref, &orderly_ref.url("/admin/orders"), &cookie).await?;
        let forged = http_ref
            .post(orderly_ref.url(&format!("/admin/orders/{de_ref}/cancel")))
            .header("cookie", format!("orderly_console={cookie}"))
            .form(&[
                ("csrf", token.as_str()),
                ("reason", "forged"),
                ("confirm", "yes"),
            ])
            .send()
            .await?;
        anyhow::ensure!(forged.status() == 403, "{}", forged.status());
        anyhow::ensure!(
            forged
                .text()
                .await?
                .contains("does not grant orders.cancel")
        );
        // A session unused for longer than its idle lifetime (30 minutes) has ended.
        sqlx::query(
            "update api.console_sessions set last_seen_at = now() - interval '31 minutes' \
             where staff_id = (select staff_id from api.staff where email = 'lead@example.com')",
        )
        .execute(&orderly_ref.staff_db)
        .await?;
        page.goto(&format!("/admin/orders/{de_ref}")).await?;
        let path = page.path().await?;
        anyhow::ensure!(
            path.starts_with("/admin/sign-in?next=%2Fadmin%2Forders%2F"),
            "{path}"
        );
        // Signing in again comes back to the page asked for.
        page.fill("email", "lead@example.com").await?;
        page.fill("password", PASSWORD).await?;
        page.navigate("form[action='/admin/sign-in'] button[type=submit]")
            .await?;
        anyhow::ensure!(
            page.path().await? == format!("/admin/orders/{de_ref}"),
            "{}",
            page.path().await?
        );
        page.sign_out().await?;
        Ok(())
    })
    .await?;

    // Nothing was sent for the refused posts: no command on either order, and the audit
    // log has the refusals the server decided (not the ones without a form token, which
    // never reached a decision).
    let commands = "select count(*) from api.commands where order_id = $1";
    assert_eq!(orderly.count(commands, &de).await?, 0);
    let refused = "select count(*) from api.audit_log where order_id = $1 and outcome = 'refused'";
    assert_eq!(
        orderly.count(refused, &de).await?,
        1,
        "the fulfillment team's cancellation"
    );
    assert_ne!(orderly.order(&de).await?["status"], "cancelled");
    let sign_ins = sqlx::query_scalar::<_, i64>(
        "select count(*) from api.audit_log where action = 'console.sign_in' and outcome = 'accepted'",
    )
    .fetch_one(&orderly.staff_db)
    .await?;
    assert_eq!(sign_ins, 3, "each sign-in is audited");
    orderly.stop().await
}

#[tokio::test]
async fn a_setup_manager_moves_a_setup_along_in_the_browser() -> anyhow::Result<()> {
    let driver = Driver::start().await?;
    let mut orderly = Orderly::start().await?;
    orderly
        .publisher
        .send(&sim::service_upserted(
            sim::SERVICE_SKU,
            "Listings setup, 40 products",
            sim::listings_template(1),
        ))
        .await?;
    sim::wait_for_service(
        &orderly.world.settings.database_url,
        sim::SERVICE_SKU,
        DEADLINE,
    )
    .await?;
    orderly
        .staff("sm@example.com", "setup_manager", &[])
        .await?;
    let order = sim::order_placed(
        &mut orderly.rng,
        "CON-SETUP-1",
        false,
        &[(product()?, 1), (sim::service_product(), 1)],
        1,
    );
    orderly.publisher.send(&order).await?;
    let order_id = orderly.order_in("CON-SETUP-1", "processing").await?;
    // The client's intake, as their link would send it.
    let setup_of = |detail: &Value| detail["setups"][0]["setup_id"].as_str().map(str::to_owned);
    let oracle = &orderly;
    let setup = wait_for("the setup on the order", DEADLINE, || async {
        Ok(setup_of(&oracle.order(&order_id).await?))
    })
    .await?;
    let (intake, role, extra, _) =
        sim::listings_next_step("pending_intake", 0).ok_or_else(|| anyhow::anyhow!("no step"))?;
    orderly
        .publisher
        .send(&sim::setup_request(&setup, &order_id, intake, role, &extra))
        .await?;
    wait_until("the intake in review", DEADLINE, || async {
        Ok(oracle.order(&order_id).await?["setups"][0]["status"] == "intake_review")
    })
    .await?;

    let dir = screenshots()?;
    let (orderly_ref, setup_ref, order_ref) = (&orderly, setup.as_str(), order_id.as_str());
    with_browser(&driver, |browser| async move {
        let page = Page {
            browser: &browser,
            orderly: orderly_ref,
            dir,
        };
        page.sign_in("sm@example.com", PASSWORD).await?;
        page.navigate("nav a[href='/admin/setups']").await?;
        let list = page.main_text().await?;
        anyhow::ensure!(
            list.contains(sim::SERVICE_SKU) && list.contains("intake_review"),
            "{list}"
        );
        page.shot("setups-01-list").await?;
        // Filtered: nothing overdue.
        page.click("#overdue").await?;
        page.navigate("form.filters button[type=submit]").await?;
        anyhow::ensure!(page.main_text().await?.contains("No setups match"));
        page.goto(&format!("/admin/setups/{setup_ref}")).await?;
        let detail = page.main_text().await?;
        anyhow::ensure!(detail.contains("Onboarding form"), "{detail}");
        page.shot("setups-02-detail").await?;

        // Complete the review: the command is answered, the setup is in the work stage.
        page.fill("advance-note", "Intake complete").await?;
        page.navigate("#step-advance").await?;
        page.wait_for_text("the step applied", true, |t| t.contains("applied"))
            .await?;
        page.goto(&format!("/admin/setups/{setup_ref}")).await?;
        let detail = page
            .wait_for_text("the setup in progress", true, |t| t.contains("in_progress"))
            .await?;
        anyhow::ensure!(detail.contains("Build the listings"), "{detail}");
        // Hold it with a reason, then release it; the history has every step.
        page.fill("hold-note", "Waiting for the photographer")
            .await?;
        page.navigate("#step-hold").await?;
        page.wait_for_text("the hold applied", true, |t| t.contains("applied"))
            .await?;
        page.goto(&format!("/admin/setups/{setup_ref}")).await?;
        page.wait_for_text("the setup on hold", true, |t| t.contains("on_hold"))
            .await?;
        page.navigate("#step-release").await?;
        page.wait_for_text("the release applied", true, |t| t.contains("applied"))
            .await?;
        page.goto(&format!("/admin/setups/{setup_ref}")).await?;
        let detail = page
            .wait_for_text("the setup released", true, |t| {
                t.contains("Waiting for the photographer") && t.contains("on_hold → in_progress")
            })
            .await?;
        anyhow::ensure!(detail.contains("setup_manager sm@example.com"), "{detail}");
        page.shot("setups-03-history").await?;

        // A step from a page that is out of date (it saw the setup's first change) is
        // refused, 412, and moves nothing: two managers never move one setup twice.
        let cookie = page.session_cookie().await?;
        let url = orderly_ref.url(&format!("/admin/setups/{setup_ref}"));
        let http = forger()?;
        let csrf = form_token(&http, &url, &cookie).await?;
        let stale = http
            .post(format!("{url}/steps"))
            .header("cookie", format!("orderly_console={cookie}"))
            .form(&[
                ("csrf", csrf.as_str()),
                ("key", &uuid::Uuid::now_v7().to_string()),
                ("seen", "1"),
                ("action", "advance"),
            ])
            .send()
            .await?;
        anyhow::ensure!(stale.status() == 412, "{}", stale.status());
        page.goto(&format!("/admin/setups/{setup_ref}")).await?;
        anyhow::ensure!(page.main_text().await?.contains("in_progress"));

        // The order shows its setup and its changes on the timeline.
        page.goto(&format!("/admin/orders/{order_ref}")).await?;
        let order = page.main_text().await?;
        anyhow::ensure!(
            order.contains("Setups") && order.contains("Setup SVC-LISTINGS-40"),
            "{order}"
        );
        page.shot("setups-04-order").await?;
        Ok(())
    })
    .await?;
    // The saga names the setup the order waits for, once its goods are delivered; until
    // then the goods come first. Either way the API's detail lists the setup's history.
    let detail = orderly.order(&order_id).await?;
    let history = detail["setups"][0]["history"]
        .as_array()
        .map_or(0, Vec::len);
    assert!(history >= 5, "{detail}");
    orderly.stop().await
}
