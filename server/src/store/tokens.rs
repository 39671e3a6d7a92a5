//! Access tokens: only a SHA-256 hash of each is stored; the token itself is shown once, when it is
//! created. A token is 32 random bytes (hex, after a `fst_` prefix), so one unsalted hash suffices:
//! there is no dictionary to guess from.

use failscope_shared::api::{Identity, Role};
use rand::RngCore;
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};

use super::{Store, StoreError};

/// What every token starts with, so a leaked one is recognisable (e.g. by secret scanners).
pub const TOKEN_PREFIX: &str = "fst_";

/// A stored token, as `failscope token list` shows it (never the token itself).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenInfo {
    /// Its unique name (a person or a service).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The studies it may see; `None`: every study.
    pub studies: Option<Vec<i64>>,
    /// When it was created (RFC 3339, UTC).
    pub created_at: String,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Whether `name` can name a token: 1–64 letters, digits, `.`, `_`, `-` or `@`.
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

impl Store {
    /// Creates a token named `name`; answers the token, which is stored only as its hash. A taken or
    /// malformed name, or a study that does not exist, is [`StoreError::Refused`].
    pub fn create_token(&self, name: &str, role: Role, studies: Option<&[i64]>) -> Result<String, StoreError> {
        if !valid_name(name) {
            return Err(StoreError::Refused(format!(
                "token name {name:?}: expected 1 to 64 letters, digits, '.', '_', '-' or '@'"
            )));
        }
        if let Some(ids) = studies {
            if ids.is_empty() {
                return Err(StoreError::Refused(
                    "a token limited to studies needs at least one".into(),
                ));
            }
            for &id in ids {
                if !self.exists(id)? {
                    return Err(StoreError::Refused(format!("no study with id {id}")));
                }
            }
        }
        let mut bytes = [0u8; 32];
        // ThreadRng is a CSPRNG (ChaCha) seeded from the operating system.
        rand::rng().fill_bytes(&mut bytes);
        let token: String = std::iter::once(TOKEN_PREFIX.to_string())
            .chain(bytes.iter().map(|b| format!("{b:02x}")))
            .collect();
        let scope = studies.map(|s| serde_json::to_string(s).expect("integers serialise"));
        let inserted = self.conn.execute(
            "INSERT OR IGNORE INTO tokens (name, role, studies, hash) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), scope, hash(&token)],
        )?;
        if inserted == 0 {
            return Err(StoreError::Refused(format!(
                "a token named {name:?} exists: revoke it first, or pick another name"
            )));
        }
        Ok(token)
    }

    /// Deletes the token named `name`; `false` when there is none.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self.conn.execute("DELETE FROM tokens WHERE name = ?1", [name])? == 1)
    }

    /// Every token, by name.
    pub fn tokens(&self) -> Result<Vec<TokenInfo>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, role, studies, created_at FROM tokens ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
            ))
        })?;
        rows.map(|row| {
            let (name, role, studies, created_at) = row?;
            let (role, studies) = decode(&name, &role, studies.as_deref())?;
            Ok(TokenInfo {
                name,
                role,
                studies,
                created_at,
            })
        })
        .collect()
    }

    /// Whether any token exists (a shared deployment needs one).
    pub fn has_tokens(&self) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT EXISTS (SELECT 1 FROM tokens)", [], |r| r.get(0))?)
    }

    /// Who `token` signs in as; `None` for a token that does not exist (or was revoked).
    pub fn authenticate(&self, token: &str) -> Result<Option<Identity>, StoreError> {
        if !token.starts_with(TOKEN_PREFIX) || token.len() > 128 {
            return Ok(None);
        }
        let row: Option<(String, String, Option<String>)> = self
            .conn
            .query_row(
                "SELECT name, role, studies FROM tokens WHERE hash = ?1",
                [hash(token)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        row.map(|(name, role, studies)| {
            let (role, studies) = decode(&name, &role, studies.as_deref())?;
            Ok(Identity {
                name,
                role,
                studies,
                access_control: true,
            })
        })
        .transpose()
    }
}

/// A stored role and scope; a value this version cannot read is an error naming the token.
fn decode(name: &str, role: &str, studies: Option<&str>) -> Result<(Role, Option<Vec<i64>>), StoreError> {
    let bad = |problem: String| StoreError::Refused(format!("study store: token {name:?} has {problem}"));
    let role = role.parse().map_err(|e| bad(format!("an unreadable role ({e})")))?;
    let studies = studies
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| bad(format!("an unreadable study list ({e})")))?;
    Ok((role, studies))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(&d.path().join("s.db")).unwrap();
        (d, s)
    }

    #[test]
    fn a_token_signs_in_until_it_is_revoked_and_only_its_hash_is_stored() {
        let (d, s) = store();
        assert!(!s.has_tokens().unwrap());
        let token = s.create_token("alice", Role::Analyst, None).unwrap();
        assert!(token.starts_with(TOKEN_PREFIX) && token.len() == TOKEN_PREFIX.len() + 64);
        let me = s.authenticate(&token).unwrap().unwrap();
        assert_eq!((me.name.as_str(), me.role, me.studies), ("alice", Role::Analyst, None));
        assert!(s.has_tokens().unwrap());
        // Neither the token nor its hex digits are anywhere in the database file.
        drop(s);
        let s = Store::open(&d.path().join("s.db")).unwrap();
        s.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        let file = std::fs::read(d.path().join("s.db")).unwrap();
        let secret = &token.as_bytes()[TOKEN_PREFIX.len()..];
        assert!(!file.windows(secret.len()).any(|w| w == secret));
        assert!(file.windows(32).any(|w| w == hash(&token).as_slice()));
        // A wrong or altered token signs in as nobody.
        let mut altered = token.clone();
        altered.pop();
        altered.push(if token.ends_with('0') { '1' } else { '0' });
        for bad in [altered.as_str(), "", "fst_", "alice", &token[TOKEN_PREFIX.len()..]] {
            assert_eq!(s.authenticate(bad).unwrap(), None, "{bad}");
        }
        assert!(s.revoke_token("alice").unwrap());
        assert!(!s.revoke_token("alice").unwrap());
        assert_eq!(s.authenticate(&token).unwrap(), None);
    }

    #[test]
    fn names_are_unique_and_checked_and_scopes_name_existing_studies() {
        let (_d, s) = store();
        let a = s.create_token("bob", Role::Viewer, None).unwrap();
        let err = s.create_token("bob", Role::Analyst, None).unwrap_err().to_string();
        assert!(err.contains("\"bob\" exists"), "{err}");
        for bad in ["", "a b", "x/y", &"n".repeat(65)] {
            let err = s.create_token(bad, Role::Viewer, None).unwrap_err().to_string();
            assert!(err.contains("expected 1 to 64"), "{err}");
        }
        let err = s
            .create_token("carol", Role::Viewer, Some(&[7]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("no study with id 7"), "{err}");
        assert!(s.create_token("carol", Role::Viewer, Some(&[])).is_err());
        let b = s.create_token("bob2", Role::Viewer, None).unwrap();
        assert_ne!(a, b, "tokens are random");
        let list = s.tokens().unwrap();
        assert_eq!(
            list.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["bob", "bob2"]
        );
        assert!(list.iter().all(|t| t.role == Role::Viewer && t.studies.is_none()));
    }
}
