//! The fast path of a large insert: the table's secondary indexes and its
//! foreign keys are dropped inside the import's transaction before the rows
//! go in and created again right after, so PostgreSQL builds each index once
//! over sorted input (GiST with PostGIS's sort support) and checks each
//! foreign key with one anti-join instead of one trigger query per row.
//!
//! Everything is transactional DDL: a rejected, failed or killed import rolls
//! the drops back with the rows, and a committed one leaves the same indexes
//! and constraints, under the same names and definitions, valid. The price is
//! the ACCESS EXCLUSIVE lock that `DROP INDEX` takes on the table until
//! commit: readers of that table (the tile server) wait for the rest of the
//! import. That is why the path is taken only when the rows added are many
//! and at least as many as the table already holds; a small import into a
//! large table keeps the indexes and pays per row instead.
//!
//! A layer COPYed straight into its table (`write_directly` in `lib.rs`)
//! takes the decision from its reader's feature count and drops the indexes
//! before its first row, so there readers wait for the whole import, reading
//! included.

use sqlx::PgConnection;

use crate::problem::ImportError;

/// Rows below which an insert always goes through the live indexes.
pub(crate) const BULK_MIN_ROWS: u64 = 20_000;

/// The indexes and foreign keys dropped for a bulk load, to be recreated.
#[derive(Debug, Default)]
pub(crate) struct Deferred {
    table: &'static str,
    /// `CREATE INDEX …` statements, as `pg_get_indexdef` gives them.
    indexes: Vec<String>,
    /// Constraint names and `FOREIGN KEY …` definitions.
    foreign_keys: Vec<(String, String)>,
}

/// Whether inserting `rows` into `table` should take the bulk path: the rows
/// are many and at least as many as the table's estimated size.
pub(crate) async fn worthwhile(
    connection: &mut PgConnection,
    table: &'static str,
    rows: u64,
) -> Result<bool, ImportError> {
    if rows < BULK_MIN_ROWS {
        return Ok(false);
    }
    // reltuples is -1 for a table never vacuumed or analysed, which is
    // also what a table freshly migrated and filled by small imports shows;
    // the exact count is then cheap enough to be worth asking.
    let estimate: f32 =
        sqlx::query_scalar("SELECT reltuples FROM pg_class WHERE oid = $1::regclass")
            .bind(table)
            .fetch_one(&mut *connection)
            .await
            .map_err(ImportError::database(format!(
                "estimating the size of {table}"
            )))?;
    let stored = if estimate >= 0.0 {
        estimate as u64
    } else {
        let count: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *connection)
            .await
            .map_err(ImportError::database(format!(
                "counting the rows of {table}"
            )))?;
        count as u64
    };
    Ok(rows >= stored)
}

/// Drops `table`'s indexes that back no constraint (the primary key stays,
/// since other tables' foreign keys rest on it) and its foreign keys.
pub(crate) async fn defer(
    connection: &mut PgConnection,
    table: &'static str,
) -> Result<Deferred, ImportError> {
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT quote_ident(i.relname), pg_get_indexdef(x.indexrelid) \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid \
         WHERE x.indrelid = $1::regclass \
           AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid) \
         ORDER BY i.relname",
    )
    .bind(table)
    .fetch_all(&mut *connection)
    .await
    .map_err(ImportError::database(format!(
        "listing the indexes of {table}"
    )))?;
    let foreign_keys: Vec<(String, String)> = sqlx::query_as(
        "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint \
         WHERE conrelid = $1::regclass AND contype = 'f' ORDER BY conname",
    )
    .bind(table)
    .fetch_all(&mut *connection)
    .await
    .map_err(ImportError::database(format!(
        "listing the foreign keys of {table}"
    )))?;
    let mut statements: Vec<String> = indexes
        .iter()
        .map(|(name, _)| format!("DROP INDEX {name}"))
        .collect();
    statements.extend(
        foreign_keys
            .iter()
            .map(|(name, _)| format!("ALTER TABLE {table} DROP CONSTRAINT {name}")),
    );
    for statement in &statements {
        sqlx::query(statement)
            .execute(&mut *connection)
            .await
            .map_err(ImportError::database(format!(
                "preparing {table} for a bulk load"
            )))?;
    }
    tracing::debug!(
        table,
        indexes = indexes.len(),
        foreign_keys = foreign_keys.len(),
        "indexes and foreign keys deferred for a bulk load"
    );
    Ok(Deferred {
        table,
        indexes: indexes
            .into_iter()
            .map(|(_, definition)| definition)
            .collect(),
        foreign_keys,
    })
}

/// Creates the deferred indexes and foreign keys again; adding a foreign key
/// checks every row with one anti-join and fails the import if one has no
/// parent (the import's own checks found none before).
pub(crate) async fn restore(
    connection: &mut PgConnection,
    deferred: Deferred,
) -> Result<(), ImportError> {
    let table = deferred.table;
    for definition in &deferred.indexes {
        let started = std::time::Instant::now();
        sqlx::query(definition)
            .execute(&mut *connection)
            .await
            .map_err(ImportError::database(format!(
                "rebuilding an index of {table}"
            )))?;
        tracing::debug!(%definition, elapsed_ms = started.elapsed().as_millis(), "index built");
    }
    for (name, definition) in &deferred.foreign_keys {
        let started = std::time::Instant::now();
        sqlx::query(&format!(
            "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
        ))
        .execute(&mut *connection)
        .await
        .map_err(ImportError::database(format!(
            "restoring the foreign key {name} of {table}"
        )))?;
        tracing::debug!(%name, elapsed_ms = started.elapsed().as_millis(), "foreign key checked");
    }
    Ok(())
}
