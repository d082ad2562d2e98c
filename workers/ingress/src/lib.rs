//! The ingress worker: takes carriers' and tracking aggregators' own webhooks over HTTP
//! (EasyPost, AfterShip, Shippo) and publishes each tracking update as `shipment.updated`,
//! so carriers need no connector that wraps their JSON in our envelope.
//!
//! What it owns, in its own schema (`ingress`):
//! - every delivery it took, once per vendor and delivery key (the vendor's event id, or the
//!   body's SHA-256 where the vendor sends none): the deduplication that makes a vendor's
//!   retry or a replayed delivery publish nothing new;
//! - the deliveries that were signed correctly but could not be taken, with why, for
//!   operators;
//! - its outbox (and an inbox it never uses: it consumes no messages).
//!
//! Why it is built this way:
//! - **verify before anything**: each vendor's own HMAC scheme, constant-time comparison,
//!   signed times held to a tolerance; an unsigned, wrongly signed or stale delivery is a
//!   401 and writes nothing, so an outsider cannot make us publish or store anything;
//! - **answer fast, lose nothing**: the delivery row and the outbox row are written in one
//!   transaction and the vendor gets its 2xx once they committed; the relay publishes
//!   afterwards (handed the row in process, like every writer of an outbox), so a crash
//!   after the answer loses nothing and a slow broker never slows the vendor down;
//! - **the vendor's words, kept**: `vocabulary` is the vendor, `raw_status` and
//!   `raw_substatus` are its status and sub-status as sent; fulfillment maps them. Times
//!   become UTC, ISO-3 countries ISO-2, carriers our carrier codes;
//! - **tolerant of the vendor's JSON**: unknown fields are ignored (vendors add fields
//!   without notice), events that are not tracking updates are acknowledged and dropped;
//!   what we cannot read is a clear 4xx naming the field, never a 500.
//!
//! Layers: `domain` (pure: signatures, each vendor's mapping, normalisation; no I/O),
//! [`store`] (its SQL), `http` (the endpoint: decode, decide, write in one transaction).
//! See `docs/architecture.md` and `docs/contracts/README.md` ("Carrier webhooks").

mod domain;
mod http;
pub mod store;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

pub use domain::Vendor;

/// The worker's name: its schema, and `orderly run ingress`.
pub const NAME: &str = "ingress";

/// The ingress settings: `[ingress]` in the configuration file, or `ORDERLY__INGRESS__<FIELD>`
/// (`ORDERLY__INGRESS__EASYPOST__SECRET`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngressSettings {
    /// Where the webhook endpoint listens. The default is loopback on a free port (logged at
    /// start), so nothing is exposed unless a deployment says where (`0.0.0.0:8080`).
    pub listen: String,
    /// The largest body accepted, in bytes (1 MiB).
    pub max_body_bytes: usize,
    /// How far a signed time may be from ours, either way, in seconds (300), where the
    /// vendor signs one (Shippo, EasyPost's timestamped scheme).
    pub tolerance_secs: u64,
    /// Publish deliveries the vendor marks as test-mode (EasyPost `mode: test`, Shippo
    /// `test: true`); off, they are acknowledged and dropped.
    pub accept_test_events: bool,
    /// Our carrier code for a vendor's carrier code where they differ, after normalisation
    /// (`dhlexpress = "dhl"`): fulfillment matches updates to shipments by carrier and
    /// tracking number, so the code must be the one the warehouse reports.
    pub carriers: BTreeMap<String, String>,
    /// EasyPost: the webhook's `webhook_secret`.
    pub easypost: VendorSettings,
    /// AfterShip: the webhook secret (Settings → Webhooks).
    pub aftership: VendorSettings,
    /// Shippo: the HMAC secret Shippo's support sets up for the account.
    pub shippo: VendorSettings,
}

impl Default for IngressSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:0".to_owned(),
            max_body_bytes: 1024 * 1024,
            tolerance_secs: 300,
            accept_test_events: false,
            carriers: BTreeMap::new(),
            easypost: VendorSettings::default(),
            aftership: VendorSettings::default(),
            shippo: VendorSettings::default(),
        }
    }
}

/// One vendor's settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VendorSettings {
    /// The shared secret the vendor signs with. Without one (or with a blank one), the
    /// vendor's deliveries are refused (503): they cannot be verified.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
}

/// A secret: never printed (`Debug` shows `***`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// A secret from its text.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The text, for computing signatures.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl IngressSettings {
    /// The secret of `vendor`, if one is configured.
    pub(crate) fn secret(&self, vendor: Vendor) -> Option<&str> {
        let settings = match vendor {
            Vendor::Easypost => &self.easypost,
            Vendor::Aftership => &self.aftership,
            Vendor::Shippo => &self.shippo,
        };
        // A blank secret (an empty variable in a template) is no secret: nothing verifies
        // against it, so the vendor is treated as not configured.
        settings
            .secret
            .as_ref()
            .map(Secret::expose)
            .filter(|s| !s.trim().is_empty())
    }

    /// Refuses settings that cannot work, naming the field.
    pub fn check(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.max_body_bytes > 0,
            "[ingress] max_body_bytes must be positive"
        );
        anyhow::ensure!(
            self.tolerance_secs > 0,
            "[ingress] tolerance_secs must be positive"
        );
        for (from, to) in &self.carriers {
            anyhow::ensure!(
                domain::normalise::is_carrier_code(from) && domain::normalise::is_carrier_code(to),
                "[ingress.carriers] `{from} = \"{to}\"`: both sides must be carrier codes \
                 (1 to 32 of a-z 0-9 _ -)"
            );
        }
        Ok(())
    }
}

/// Starts the worker on `host`: its outbox relay and its webhook endpoint, listening on
/// `settings.listen`. Returns the address it listens on.
pub async fn start(
    host: &mut orderly_runtime::Host,
    settings: IngressSettings,
) -> anyhow::Result<SocketAddr> {
    settings.check()?;
    let pool = host.pool_for(NAME).await?;
    let handoff = host.start_relay(NAME, pool.clone());
    let listener = tokio::net::TcpListener::bind(&settings.listen)
        .await
        .with_context(|| format!("[ingress] cannot listen on {}", settings.listen))?;
    let addr = listener.local_addr()?;
    let configured: Vec<&str> = Vendor::ALL
        .into_iter()
        .filter(|v| settings.secret(*v).is_some())
        .map(Vendor::as_str)
        .collect();
    for vendor in Vendor::ALL
        .into_iter()
        .filter(|v| settings.secret(*v).is_none())
    {
        warn!(%vendor, "no secret configured: {vendor}'s deliveries will be refused (503)");
    }
    let metrics = host.metrics();
    for vendor in Vendor::ALL {
        metrics.webhooks_started(vendor.as_str(), http::OUTCOMES);
    }
    let endpoint = Arc::new(http::Endpoint {
        pool,
        handoff: Some(handoff),
        settings,
        metrics,
    });
    let app = http::router(endpoint);
    let health = host.health();
    host.spawn_task("carrier-webhooks", move |shutdown| async move {
        health.set("ingress.http", true);
        // Graceful: on shutdown, requests in hand finish (their transactions commit and
        // their rows reach the relay, which flushes before it stops).
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown.cancelled_owned())
            .await
        {
            warn!(error = %e, "carrier webhook endpoint stopped with an error");
        }
        health.set("ingress.http", false);
    });
    info!(%addr, ?configured, "carrier webhooks listening on /webhooks/carriers/{{vendor}}");
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingress_section_is_read_from_the_configuration_file() {
        let dir = std::env::temp_dir().join(format!("orderly-ingress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("orderly.toml");
        std::fs::write(
            &file,
            "[ingress]\nlisten = \"0.0.0.0:8080\"\ntolerance_secs = 120\n\
             [ingress.aftership]\nsecret = \"s3cret\"\n\
             [ingress.shippo]\nsecret = \"  \"\n\
             [ingress.carriers]\ndhlexpress = \"dhl\"\n",
        )
        .expect("write");
        let settings = orderly_runtime::Settings::load(Some(&file)).expect("loads");
        let ingress: IngressSettings = settings.section("ingress").expect("section");
        assert_eq!(ingress.listen, "0.0.0.0:8080");
        assert_eq!(ingress.tolerance_secs, 120);
        assert_eq!(
            ingress.max_body_bytes,
            1024 * 1024,
            "a default for the rest"
        );
        assert_eq!(ingress.secret(Vendor::Aftership), Some("s3cret"));
        assert_eq!(ingress.secret(Vendor::Easypost), None);
        assert_eq!(ingress.secret(Vendor::Shippo), None, "blank is no secret");
        assert_eq!(
            ingress.carriers.get("dhlexpress").map(String::as_str),
            Some("dhl")
        );
        assert!(ingress.check().is_ok());
        assert!(
            !format!("{ingress:?}").contains("s3cret"),
            "secrets are never printed"
        );

        std::fs::write(&file, "[ingress]\nlisten_on = \"0.0.0.0:8080\"\n").expect("write");
        let err = orderly_runtime::Settings::load(Some(&file))
            .expect("loads")
            .section::<IngressSettings>("ingress")
            .expect_err("a misspelt key is refused");
        assert!(err.to_string().contains("listen_on"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn carrier_aliases_must_be_carrier_codes() {
        let mut settings = IngressSettings::default();
        settings
            .carriers
            .insert("DHL Express".to_owned(), "dhl".to_owned());
        let err = settings.check().expect_err("refused");
        assert!(err.to_string().contains("DHL Express"), "{err}");
    }
}
