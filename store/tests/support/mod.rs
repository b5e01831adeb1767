//! The backend harness the store and webhook suites share: each test runs on a fresh SQLite
//! file and, when `DATABASE_URL` is set, on Postgres in a schema of its own that is dropped
//! afterwards, even when the test panics.

use std::{future::Future, panic::AssertUnwindSafe, sync::Arc};

use convo_store::Store;
use futures::FutureExt;
use sqlx::Connection;

/// A database for one test, and what it takes to reopen and remove it.
pub(crate) struct Db {
    pub(crate) store: Store,
    /// The URL the store was opened with, to reopen the same database.
    pub(crate) url: String,
}

pub(crate) enum Cleanup {
    /// The temporary directory holding the SQLite file; removed when dropped.
    Sqlite { _dir: tempfile::TempDir },
    /// The Postgres schema to drop.
    Postgres { admin_url: String, schema: String },
}

#[derive(Clone, Copy)]
pub(crate) enum Kind {
    Sqlite,
    Postgres,
}

async fn create(kind: Kind) -> Option<(Db, Cleanup)> {
    match kind {
        Kind::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("convo.db").display());
            let store = Store::connect(&url).await.expect("open sqlite");
            Some((Db { store, url }, Cleanup::Sqlite { _dir: dir }))
        }
        Kind::Postgres => {
            let admin_url = std::env::var("DATABASE_URL").ok().filter(|u| !u.trim().is_empty())?;
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut admin =
                sqlx::PgConnection::connect(&admin_url).await.expect("connect to DATABASE_URL");
            sqlx::query(&format!("CREATE SCHEMA {schema}"))
                .execute(&mut admin)
                .await
                .expect("create schema");
            admin.close().await.ok();
            let sep = if admin_url.contains('?') { '&' } else { '?' };
            let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
            let store = Store::connect(&url).await.expect("open postgres");
            Some((Db { store, url }, Cleanup::Postgres { admin_url, schema }))
        }
    }
}

async fn cleanup(db: Db, cleanup: Cleanup) {
    db.store.close().await;
    if let Cleanup::Postgres { admin_url, schema } = cleanup {
        let mut admin = sqlx::PgConnection::connect(&admin_url).await.expect("connect");
        sqlx::query(&format!("DROP SCHEMA {schema} CASCADE"))
            .execute(&mut admin)
            .await
            .expect("drop schema");
    }
}

/// Runs `test` on a fresh database of `kind`, and removes the database even if it panics.
pub(crate) async fn run<F, Fut>(kind: Kind, test: F)
where
    F: FnOnce(Arc<Db>) -> Fut,
    Fut: Future<Output = ()>,
{
    let Some((db, clean)) = create(kind).await else {
        eprintln!("DATABASE_URL is not set: skipping the Postgres run");
        return;
    };
    let db = Arc::new(db);
    let outcome = AssertUnwindSafe(test(Arc::clone(&db))).catch_unwind().await;
    let db = Arc::try_unwrap(db).unwrap_or_else(|_| panic!("the test kept its database"));
    cleanup(db, clean).await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// Declares each test once per backend: `sqlite::name` and `postgres::name`. The calling
/// file brings `run` and `Kind` into scope (`use support::{Kind, run};`).
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::run(super::Kind::Sqlite, super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::run(super::Kind::Postgres, super::$name).await;
                }
            )*
        }
    };
}
