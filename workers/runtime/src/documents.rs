//! The document store: where invoice and credit-note PDFs live, shared by the worker that
//! writes them (invoicing) and the ones that serve them (the api), through the
//! [`object_store`] crate.
//!
//! Why an object store and not a worker's table: a document is read by workers that must not
//! read the invoicing worker's schema (the api streams it to operators and customers). The
//! events that announce a document carry its key and SHA-256 (`DocumentRef`), so any worker
//! with the same `[documents]` settings fetches it by key and proves it is the one issued.
//! The store is infrastructure, like the broker: no worker owns it.
//!
//! Where: a local directory by default (`[documents] store = "file"`, `path`), any
//! S3-compatible store in production (`store = "s3"`: bucket, endpoint, region and
//! credentials from the settings or the standard `AWS_*` environment variables; the binary
//! needs the feature `aws`). Every process that reads or writes documents must point at the
//! same place: on one machine the default directory, across machines a shared bucket. See
//! `docs/decisions/0010-object-store-for-documents.md`.

use std::{path::PathBuf, sync::Arc};

use object_store::{ObjectStore, local::LocalFileSystem, path::Path};
use serde::{Deserialize, Serialize};

/// Where documents are kept: `[documents]` in the configuration file, or
/// `ORDERLY__DOCUMENTS__<FIELD>`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DocumentSettings {
    /// `file` (a local directory, the default) or `s3` (any S3-compatible store).
    pub store: StoreKind,
    /// `file`: the directory, absolute or relative to the working directory (created if
    /// missing).
    pub path: PathBuf,
    /// `s3`: the bucket (else `AWS_BUCKET_NAME`/`AWS_BUCKET`).
    pub bucket: Option<String>,
    /// `s3`: the endpoint of an S3-compatible store such as MinIO (else `AWS_ENDPOINT`;
    /// none for AWS itself).
    pub endpoint: Option<String>,
    /// `s3`: the region (else `AWS_REGION`/`AWS_DEFAULT_REGION`).
    pub region: Option<String>,
    /// `s3`: the access key id (else `AWS_ACCESS_KEY_ID`, or the instance's role).
    pub access_key_id: Option<String>,
    /// `s3`: the secret access key (else `AWS_SECRET_ACCESS_KEY`). Never printed.
    pub secret_access_key: Option<String>,
    /// `s3`: allow a plain `http://` endpoint (a MinIO on the same host); off by default.
    pub allow_http: bool,
}

/// The kinds of document store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// A local directory.
    #[default]
    File,
    /// An S3-compatible object store.
    S3,
}

impl Default for DocumentSettings {
    fn default() -> Self {
        Self {
            store: StoreKind::File,
            path: PathBuf::from("var/documents"),
            bucket: None,
            endpoint: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            allow_http: false,
        }
    }
}

impl std::fmt::Debug for DocumentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentSettings")
            .field("store", &self.store)
            .field("path", &self.path)
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "<redacted>"),
            )
            .field("allow_http", &self.allow_http)
            .finish()
    }
}

/// A document store that cannot be opened, with the reason.
#[derive(Debug, thiserror::Error)]
#[error("[documents]: {0}")]
pub struct DocumentStoreError(String);

/// Opens the store the settings name. A local directory is created if missing and written
/// with `fsync` (a document is announced only after it is stored, so it must survive a
/// power cut); an S3 store is only configured here (its first request says whether the
/// credentials work).
pub fn open(settings: &DocumentSettings) -> Result<Arc<dyn ObjectStore>, DocumentStoreError> {
    match settings.store {
        StoreKind::File => Ok(Arc::new(local(settings)?.with_fsync(true))),
        StoreKind::S3 => open_s3(settings),
    }
}

fn local(settings: &DocumentSettings) -> Result<LocalFileSystem, DocumentStoreError> {
    std::fs::create_dir_all(&settings.path).map_err(|e| {
        DocumentStoreError(format!(
            "cannot create the directory {}: {e}",
            settings.path.display()
        ))
    })?;
    LocalFileSystem::new_with_prefix(&settings.path).map_err(|e| DocumentStoreError(e.to_string()))
}

/// A document store for a writer that puts many documents and then needs them all durable
/// at once (the invoice renderer: a round's PDFs, then one transaction announcing them).
///
/// Why: [`open`]'s local directory syncs every put as it goes (the staged file, then its
/// directory after the rename), each put waiting for its own flushes while the next writers
/// queue on the directory's lock. Here a put to a local directory only writes;
/// [`BatchedStore::make_durable`] then syncs the round's files all together and each of
/// their directories once, so the file system commits them in a few journal commits,
/// before the caller announces any of them. An S3 store's put is durable when it returns;
/// there `make_durable` does nothing.
#[derive(Clone)]
pub struct BatchedStore {
    store: Arc<dyn ObjectStore>,
    /// The same store as a local directory, where puts must be synced.
    local: Option<Arc<LocalFileSystem>>,
}

impl std::fmt::Debug for BatchedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchedStore")
            .field("store", &self.store.to_string())
            .field("local", &self.local.is_some())
            .finish()
    }
}

/// How many files [`BatchedStore::make_durable`] syncs at a time.
const SYNCS_IN_FLIGHT: usize = 16;

impl BatchedStore {
    /// Puts and gets. A put is not durable until [`Self::make_durable`] returns.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Makes the puts of `keys` (each returned already) durable: the files, then each of
    /// their directories once.
    pub async fn make_durable(&self, keys: &[Path]) -> std::io::Result<()> {
        use futures_util::{StreamExt, TryStreamExt, stream};
        let Some(local) = &self.local else {
            return Ok(());
        };
        let sync = |path: PathBuf| async move {
            tokio::task::spawn_blocking(move || std::fs::File::open(&path)?.sync_all())
                .await
                .map_err(std::io::Error::other)?
        };
        let files = keys
            .iter()
            .map(|key| local.path_to_filesystem(key))
            .collect::<Result<Vec<PathBuf>, _>>()
            .map_err(std::io::Error::other)?;
        stream::iter(files.iter().cloned().map(sync))
            .buffer_unordered(SYNCS_IN_FLIGHT)
            .try_collect::<()>()
            .await?;
        let mut directories: Vec<PathBuf> = files
            .iter()
            .filter_map(|f| f.parent().map(std::path::Path::to_path_buf))
            .collect();
        directories.sort();
        directories.dedup();
        stream::iter(directories.into_iter().map(sync))
            .buffer_unordered(SYNCS_IN_FLIGHT)
            .try_collect::<()>()
            .await
    }
}

/// A store used as it is: its puts are as durable as it makes them, `make_durable` does
/// nothing (a store from [`open`], or a test's).
impl From<Arc<dyn ObjectStore>> for BatchedStore {
    fn from(store: Arc<dyn ObjectStore>) -> Self {
        Self { store, local: None }
    }
}

/// Opens the store the settings name for batched writes (see [`BatchedStore`]).
pub fn open_batched(settings: &DocumentSettings) -> Result<BatchedStore, DocumentStoreError> {
    match settings.store {
        StoreKind::File => {
            let local = Arc::new(local(settings)?);
            Ok(BatchedStore {
                store: local.clone(),
                local: Some(local),
            })
        }
        StoreKind::S3 => Ok(BatchedStore {
            store: open_s3(settings)?,
            local: None,
        }),
    }
}

#[cfg(feature = "aws")]
fn open_s3(settings: &DocumentSettings) -> Result<Arc<dyn ObjectStore>, DocumentStoreError> {
    let mut builder = object_store::aws::AmazonS3Builder::from_env();
    if let Some(bucket) = &settings.bucket {
        builder = builder.with_bucket_name(bucket);
    }
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(region) = &settings.region {
        builder = builder.with_region(region);
    }
    if let Some(key) = &settings.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if settings.allow_http {
        builder = builder.with_allow_http(true);
    }
    let store = builder
        .build()
        .map_err(|e| DocumentStoreError(e.to_string()))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "aws"))]
fn open_s3(_: &DocumentSettings) -> Result<Arc<dyn ObjectStore>, DocumentStoreError> {
    Err(DocumentStoreError(
        "store = \"s3\" needs a binary built with the feature `aws` \
         (`cargo build --release -p orderly --features aws`)"
            .to_owned(),
    ))
}

/// Which of an order's documents a key names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocumentFolder {
    /// `invoices/`.
    Invoices,
    /// `credit-notes/`.
    CreditNotes,
}

impl DocumentFolder {
    fn as_str(self) -> &'static str {
        match self {
            Self::Invoices => "invoices",
            Self::CreditNotes => "credit-notes",
        }
    }
}

/// The key of a document's PDF: `invoices/{store_id}/{number}.pdf` or
/// `credit-notes/{store_id}/{number}.pdf` (numbers are unique per store and kind). Each
/// segment is escaped as [`object_store`] escapes path parts, so a number with a `/` (a
/// prefix may have one) stays one segment: `RE/2026/7` → `RE%2F2026%2F7.pdf`.
///
/// The invoicing worker names every PDF it writes this way and carries the key in its
/// issued messages; `orderly documents migrate` copies older PDFs to the same keys, so a
/// reader of an older message (one without a key) finds its PDF here too.
pub fn pdf_key(folder: DocumentFolder, store_id: &str, number: &str) -> Path {
    Path::from_iter([folder.as_str(), store_id, &format!("{number}.pdf")])
}

/// Where the structured e-invoice (EN 16931 XML) of a document is kept: beside its PDF,
/// `invoices/{store_id}/{number}.xml`.
pub fn xml_key(folder: DocumentFolder, store_id: &str, number: &str) -> Path {
    Path::from_iter([folder.as_str(), store_id, &format!("{number}.xml")])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_one_segment_per_part() {
        assert_eq!(
            pdf_key(DocumentFolder::Invoices, "shop-de", "RE-2026-000123").as_ref(),
            "invoices/shop-de/RE-2026-000123.pdf"
        );
        let odd = pdf_key(DocumentFolder::CreditNotes, "..", "GS/2026/7");
        assert_eq!(odd.as_ref(), "credit-notes/%2E%2E/GS%2F2026%2F7.pdf");
        assert_eq!(odd.parts().count(), 3);
        // A key read back from a message is the same path.
        assert_eq!(Path::parse(odd.as_ref()).ok(), Some(odd));
    }

    #[test]
    fn the_documents_section_is_read_with_defaults_and_secrets_are_not_printed() {
        let dir = std::env::temp_dir().join(format!("orderly-docs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let file = dir.join("orderly.toml");
        std::fs::write(
            &file,
            "[documents]\nstore = \"s3\"\nbucket = \"docs\"\nsecret_access_key = \"hunter2\"\n",
        )
        .expect("write");
        let settings = crate::Settings::load(Some(&file)).expect("loads");
        let documents: DocumentSettings = settings.section("documents").expect("section");
        assert_eq!(documents.store, StoreKind::S3);
        assert_eq!(documents.bucket.as_deref(), Some("docs"));
        assert_eq!(documents.path, PathBuf::from("var/documents"), "a default");
        assert!(!format!("{documents:?}").contains("hunter2"));

        std::fs::write(&file, "[documents]\nstore = \"ftp\"\n").expect("write");
        let err = crate::Settings::load(Some(&file))
            .expect("loads")
            .section::<DocumentSettings>("documents")
            .expect_err("an unknown store is refused");
        assert!(err.to_string().contains("ftp"), "{err}");
        std::fs::remove_dir_all(&dir).ok();
    }

    #[cfg(feature = "aws")]
    #[test]
    fn an_s3_store_is_configured_from_the_settings() {
        let settings = DocumentSettings {
            store: StoreKind::S3,
            bucket: Some("orderly-documents".to_owned()),
            endpoint: Some("http://127.0.0.1:9000".to_owned()),
            region: Some("eu-central-1".to_owned()),
            access_key_id: Some("minio".to_owned()),
            secret_access_key: Some("minio-secret".to_owned()),
            allow_http: true,
            ..DocumentSettings::default()
        };
        let store = open(&settings).expect("configured (no request is made)");
        assert!(store.to_string().contains("orderly-documents"), "{store}");
    }

    #[cfg(not(feature = "aws"))]
    #[test]
    fn an_s3_store_needs_the_aws_feature() {
        let settings = DocumentSettings {
            store: StoreKind::S3,
            ..DocumentSettings::default()
        };
        let err = open(&settings).expect_err("not built in");
        assert!(err.to_string().contains("--features aws"), "{err}");
    }

    #[tokio::test]
    async fn a_local_store_is_created_and_keeps_what_is_put() {
        use object_store::ObjectStoreExt;
        let dir = std::env::temp_dir().join(format!(
            "orderly-docs-store-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let settings = DocumentSettings {
            path: dir.join("nested"),
            ..DocumentSettings::default()
        };
        let store = open(&settings).expect("opens, creating the directory");
        let key = pdf_key(DocumentFolder::Invoices, "shop-de", "RE/1");
        store
            .put(&key, b"%PDF-1.7".to_vec().into())
            .await
            .expect("put");
        let bytes = store
            .get(&key)
            .await
            .expect("get")
            .bytes()
            .await
            .expect("bytes");
        assert_eq!(bytes.as_ref(), b"%PDF-1.7");
        std::fs::remove_dir_all(&dir).ok();
    }

    /// A batched store syncs exactly the files it is given (an odd key included, through
    /// the store's own mapping of keys to files), and says so when one is not there.
    #[tokio::test]
    async fn a_batched_store_makes_the_named_puts_durable() {
        use object_store::ObjectStoreExt;
        let dir = std::env::temp_dir().join(format!(
            "orderly-docs-batched-{}",
            uuid::Uuid::now_v7().simple()
        ));
        let settings = DocumentSettings {
            path: dir.clone(),
            ..DocumentSettings::default()
        };
        let batched = open_batched(&settings).expect("opens");
        let keys = [
            pdf_key(DocumentFolder::Invoices, "shop-de", "RE/2026/1"),
            xml_key(DocumentFolder::Invoices, "shop-de", "RE/2026/1"),
            pdf_key(DocumentFolder::CreditNotes, "shop-fr", "GS-1"),
        ];
        for key in &keys {
            batched
                .store()
                .put(key, b"bytes".to_vec().into())
                .await
                .expect("put");
        }
        batched.make_durable(&keys).await.expect("synced");
        let never_put = pdf_key(DocumentFolder::Invoices, "shop-de", "RE-404");
        let err = batched
            .make_durable(&[never_put])
            .await
            .expect_err("a file that is not there cannot be made durable");
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound, "{err}");
        // A store used as it is (S3, a test's) has nothing to sync.
        let plain = BatchedStore::from(open(&settings).expect("opens"));
        plain.make_durable(&keys).await.expect("nothing to do");
        std::fs::remove_dir_all(&dir).ok();
    }
}
