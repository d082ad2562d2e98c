//! An order's document (invoice or credit note) as the read model knows it: what the
//! endpoints that serve its PDF need to find it in the document store and to prove the
//! bytes are the ones issued.

use object_store::path::Path;
use orderly_runtime::documents::{self, DocumentFolder};
use sqlx::PgPool;
use uuid::Uuid;

use super::customers::{Owner, owned_by};

/// A document of an order, with the order's store (for the caller's scope).
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct StoredDocument {
    pub(crate) store_id: String,
    pub(crate) kind: String,
    pub(crate) number: String,
    /// Its key, as its event named it (none in events from before the document store).
    pub(crate) pdf_key: Option<String>,
    pub(crate) pdf_sha256: String,
    pub(crate) pdf_size_bytes: i64,
}

impl StoredDocument {
    /// Where its PDF is in the document store: the key its event named, else the key
    /// `orderly documents migrate` copied it to (`invoices/{store}/{number}.pdf`). An error
    /// names a key that is not one.
    pub(crate) fn key(&self) -> Result<Path, String> {
        match &self.pdf_key {
            Some(key) => Path::parse(key).map_err(|e| format!("`{key}` is not a key: {e}")),
            None => {
                let folder = if self.kind == "credit_note" {
                    DocumentFolder::CreditNotes
                } else {
                    DocumentFolder::Invoices
                };
                Ok(documents::pdf_key(folder, &self.store_id, &self.number))
            }
        }
    }

    /// A file name for the download (`RE-2026-000123.pdf`), with anything but letters,
    /// digits, `-`, `_` and `.` made `_`.
    pub(crate) fn file_name(&self) -> String {
        let safe: String = self
            .number
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{safe}.pdf")
    }
}

/// Document `document_id` of order `order_id`, if the read model has both; with `owner`,
/// only if the order is that customer's.
pub(crate) async fn find(
    pool: &PgPool,
    order_id: Uuid,
    document_id: Uuid,
    owner: Option<Owner<'_>>,
) -> Result<Option<StoredDocument>, sqlx::Error> {
    sqlx::query_as(concat!(
        "select o.store_id, d.kind, d.number, d.pdf_key, d.pdf_sha256, \
           d.pdf_size_bytes \
         from documents d join orders o on o.order_id = d.order_id \
         where d.order_id = $3 and d.document_id = $4 and ($1::text is null or (",
        owned_by!(),
        "))"
    ))
    .bind(owner.map(|o| o.store_id))
    .bind(owner.map(|o| o.customer_id))
    .bind(order_id)
    .bind(document_id)
    .fetch_optional(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(kind: &str, key: Option<&str>) -> StoredDocument {
        StoredDocument {
            store_id: "shop-de".to_owned(),
            kind: kind.to_owned(),
            number: "GS/2026/7".to_owned(),
            pdf_key: key.map(str::to_owned),
            pdf_sha256: "0".repeat(64),
            pdf_size_bytes: 1,
        }
    }

    #[test]
    fn the_key_is_the_events_else_the_one_the_migration_used() {
        let named = document("invoice", Some("invoices/shop-de/RE-1.pdf"));
        assert_eq!(
            named.key().map(|k| k.to_string()),
            Ok("invoices/shop-de/RE-1.pdf".to_owned())
        );
        let older = document("credit_note", None);
        assert_eq!(
            older.key().map(|k| k.to_string()),
            Ok("credit-notes/shop-de/GS%2F2026%2F7.pdf".to_owned())
        );
        assert!(document("invoice", Some("a/\u{1}/b")).key().is_err());
        assert_eq!(older.file_name(), "GS_2026_7.pdf");
    }
}
