//! A throwaway namespace and database, for benchmarks that run real workers beside a live
//! system without mixing their queues and rows with it.

use crate::{
    Settings,
    broker::{self, Names},
    db, topology,
};

/// A throwaway namespace and database for a worker benchmark, so that its queues and rows
/// never mix with a running system's.
#[derive(Debug)]
pub struct Scratch {
    /// Settings pointing at the scratch namespace and database.
    pub settings: Settings,
    database: String,
    base: String,
}

impl Scratch {
    /// Creates the database (migrated) and declares the standard topology.
    pub async fn new(settings: &Settings, what: &str) -> anyhow::Result<Self> {
        let suffix = &uuid::Uuid::now_v7().simple().to_string()[20..];
        let mut settings = settings.clone();
        settings.namespace = format!("bench-{what}-{suffix}");
        let base = settings
            .database_url
            .rsplit_once('/')
            .map_or(settings.database_url.clone(), |(b, _)| b.to_owned());
        let database = format!("orderly_bench_{what}_{suffix}");
        settings.database_url = format!("{base}/{database}");
        settings.http_addr = "127.0.0.1:0".into();
        db::ensure_database(&settings.database_url).await?;
        db::migrate(&settings.database_url).await?;
        Ok(Self {
            settings,
            database,
            base,
        })
    }

    /// Deletes the namespace's queues and the database.
    pub async fn remove(self) -> anyhow::Result<()> {
        let names = Names::new(self.settings.namespace.clone());
        let connection = broker::connect(&self.settings.broker_url, "orderly-bench").await?;
        let channel = connection.create_channel().await?;
        topology::delete(&channel, &names, &topology::standard_specs(&self.settings)).await?;
        let _ = connection.close(200, "done".into()).await;
        let admin = db::connect(&format!("{}/postgres", self.base), "public", 1).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "drop database if exists {} with (force)",
            self.database
        )))
        .execute(&admin)
        .await?;
        Ok(())
    }
}
