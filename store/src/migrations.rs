//! The schema migrations, compiled into the binary.
//!
//! They are embedded with `include_str!` and handed to sqlx's `Migrator` through a
//! [`MigrationSource`] instead of `sqlx::migrate!`: the macro needs sqlx's `macros` feature,
//! which builds every database driver (and a second copy of SQLite) for the host just to read
//! a directory. Versions, checksums and the `_sqlx_migrations` table are sqlx's, so the result
//! is the same as with the macro.

use std::borrow::Cow;

use futures::future::{self, BoxFuture};
use sqlx::{
    error::BoxDynError,
    migrate::{MigrateError, Migration, MigrationSource, MigrationType, Migrator},
};

/// `(version, description, sql)` of every migration, in order. Never edit an entry once it has
/// shipped: sqlx refuses to run against a database whose applied checksum differs.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "store", include_str!("../migrations/0001_store.sql")),
    (2, "api", include_str!("../migrations/0002_api.sql")),
    (3, "workspace config", include_str!("../migrations/0003_workspace_config.sql")),
    (4, "idempotency leases", include_str!("../migrations/0004_idempotency_leases.sql")),
    (5, "session windows", include_str!("../migrations/0005_session_windows.sql")),
    (6, "delivery statuses", include_str!("../migrations/0006_delivery_statuses.sql")),
    (7, "template components", include_str!("../migrations/0007_template_components.sql")),
    (8, "message volume", include_str!("../migrations/0008_message_volume.sql")),
    (9, "templates per channel", include_str!("../migrations/0009_templates_per_channel.sql")),
    (10, "api key scopes", include_str!("../migrations/0010_api_key_scopes.sql")),
];

#[derive(Debug, Clone, Copy)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(self) -> BoxFuture<'static, Result<Vec<Migration>, BoxDynError>> {
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    Cow::Borrowed(sql),
                    false,
                )
            })
            .collect();
        Box::pin(future::ready(Ok(migrations)))
    }
}

pub(super) async fn migrator() -> Result<Migrator, MigrateError> {
    Migrator::new(Embedded).await
}
