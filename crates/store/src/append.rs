//! The events one commit appends to the journal, written several rows per statement.
//! One INSERT per event ran SQLite's statement machinery and updated `sqlite_sequence`
//! (the table's AUTOINCREMENT) once per event: about a fifth of the writer's work on
//! batches.

use std::fmt::Write as _;

use rusqlite::Transaction;

/// Rows per INSERT, largest first: a commit's rows take as few statements as these sizes
/// allow, with one cached statement per size.
const CHUNKS: [usize; 3] = [32, 8, 1];

/// A commit's appended events: rows still to insert, and each source's accepted
/// `messageId`s (for `seen_ids`).
#[derive(Default)]
pub(crate) struct Appends {
    sources: Vec<SourceIds>,
    rows: Vec<NewRow>,
}

struct SourceIds {
    name: String,
    ids: Vec<String>,
}

struct NewRow {
    /// Its source's index in `sources`.
    source: usize,
    user_key: String,
    message_id: String,
    body: String,
}

impl Appends {
    /// The handle of `name` within this commit, for [`Appends::push`].
    pub fn source(&mut self, name: &str) -> usize {
        match self.sources.iter().position(|s| s.name == name) {
            Some(at) => at,
            None => {
                self.sources.push(SourceIds {
                    name: name.to_string(),
                    ids: Vec::new(),
                });
                self.sources.len() - 1
            }
        }
    }

    /// Queues one event; rows keep the order they were pushed in.
    pub fn push(&mut self, source: usize, user_key: String, message_id: String, body: String) {
        self.rows.push(NewRow {
            source,
            user_key,
            message_id,
            body,
        });
    }

    /// Inserts the queued rows in order (their ids follow it).
    pub fn flush(&mut self, tx: &Transaction<'_>, now_ms: i64) -> rusqlite::Result<()> {
        let mut rest = &self.rows[..];
        for size in CHUNKS {
            if rest.len() < size {
                continue;
            }
            let mut insert = tx.prepare_cached(&insert_sql(size))?;
            while rest.len() >= size {
                let (chunk, tail) = rest.split_at(size);
                insert.raw_bind_parameter(1, now_ms)?;
                for (i, row) in chunk.iter().enumerate() {
                    let at = 2 + 4 * i;
                    let source = self.sources.get(row.source).map_or("", |s| &s.name);
                    insert.raw_bind_parameter(at, source)?;
                    insert.raw_bind_parameter(at + 1, &row.user_key)?;
                    insert.raw_bind_parameter(at + 2, &row.message_id)?;
                    insert.raw_bind_parameter(at + 3, &row.body)?;
                }
                insert.raw_execute()?;
                rest = tail;
            }
        }
        for row in self.rows.drain(..) {
            if let Some(source) = self.sources.get_mut(row.source) {
                source.ids.push(row.message_id);
            }
        }
        Ok(())
    }

    /// Each source's accepted ids, in order; complete after the last [`Appends::flush`].
    pub fn seen_ids(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.sources
            .iter()
            .map(|s| (s.name.as_str(), s.ids.as_slice()))
    }
}

/// `INSERT … VALUES` for `rows` rows: `?1` the time, then four parameters per row.
fn insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO journal (source, user_key, message_id, kind, body, accepted_at_ms) VALUES ",
    );
    for i in 0..rows {
        let at = 2 + 4 * i;
        if i > 0 {
            sql.push(',');
        }
        let _ = write!(
            sql,
            "(?{at}, ?{}, ?{}, 'event', ?{}, ?1)",
            at + 1,
            at + 2,
            at + 3
        );
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn journal() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, source TEXT NOT NULL,
             user_key TEXT NOT NULL, message_id TEXT NOT NULL, kind TEXT NOT NULL,
             body TEXT NOT NULL, accepted_at_ms INTEGER NOT NULL)",
        )
        .unwrap();
        conn
    }

    /// Every chunk size and the remainders between them keep the rows' order and fields.
    #[test]
    fn rows_are_inserted_in_order_whatever_their_number() {
        for count in [0, 1, 7, 8, 9, 31, 32, 33, 41, 100] {
            let mut conn = journal();
            let tx = conn.transaction().unwrap();
            let mut appends = Appends::default();
            let a = appends.source("a");
            let b = appends.source("b");
            assert_eq!(appends.source("a"), a);
            let mut expected = Vec::new();
            for n in 0..count {
                let source = if n % 3 == 0 { b } else { a };
                let fields = (
                    format!("u{}", n % 5),
                    format!("m{n}"),
                    format!("{{\"n\":{n}}}"),
                );
                appends.push(source, fields.0.clone(), fields.1.clone(), fields.2.clone());
                let name = if source == a { "a" } else { "b" };
                expected.push((name.to_string(), fields.0, fields.1, fields.2));
            }
            appends.flush(&tx, 42).unwrap();
            let mut stmt = tx
                .prepare("SELECT source, user_key, message_id, body, kind, accepted_at_ms FROM journal ORDER BY id")
                .unwrap();
            let rows: Vec<(String, String, String, String)> = stmt
                .query_map([], |row| {
                    assert_eq!(row.get::<_, String>(4)?, "event");
                    assert_eq!(row.get::<_, i64>(5)?, 42);
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(rows, expected, "{count} rows");
            let ids: Vec<(String, Vec<String>)> = appends
                .seen_ids()
                .map(|(s, ids)| (s.to_string(), ids.to_vec()))
                .collect();
            let of = |name: &str| -> Vec<String> {
                expected
                    .iter()
                    .filter(|r| r.0 == name)
                    .map(|r| r.2.clone())
                    .collect()
            };
            assert_eq!(ids, vec![("a".into(), of("a")), ("b".into(), of("b"))]);
        }
    }
}
