//! Who may do what: the roles of an access token and the identity `GET /api/me` answers.
//!
//! A shared deployment signs every request in with a token (a bearer header or the sign-in
//! cookie). A **viewer** reads studies, images, stored layouts and share links; an **analyst** also
//! starts jobs (new embeddings and clusterings), cancels them and creates share links. A token may be
//! limited to some studies; every other study then does not exist for it.

use serde::{Deserialize, Serialize};

/// What a token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads studies, samples, images, stored results and share links.
    Viewer,
    /// Also starts and cancels jobs and creates share links.
    Analyst,
}

impl Role {
    /// The name the CLI and the store use.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
        }
    }

    /// Whether this role may do what `needed` may.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "analyst" => Ok(Role::Analyst),
            other => Err(format!("unknown role {other:?}: expected viewer or analyst")),
        }
    }
}

/// `GET /api/me`: who the request is signed in as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    /// The token's name (`local` when the server runs without access control).
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The studies it may see; `None`: every study.
    pub studies: Option<Vec<i64>>,
    /// Whether the server checks tokens at all (false on a loopback address without `--auth`).
    pub access_control: bool,
}

impl Identity {
    /// Whether study `id` exists for this identity.
    pub fn sees(&self, id: i64) -> bool {
        self.studies.as_ref().is_none_or(|s| s.contains(&id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_analyst_may_do_what_a_viewer_may_but_not_the_other_way_round() {
        assert!(Role::Analyst.allows(Role::Viewer));
        assert!(Role::Analyst.allows(Role::Analyst));
        assert!(Role::Viewer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Analyst));
    }

    #[test]
    fn roles_round_trip_through_their_names_and_json() {
        for r in [Role::Viewer, Role::Analyst] {
            assert_eq!(r.to_string().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("admin".parse::<Role>().unwrap_err().contains("viewer or analyst"));
    }

    #[test]
    fn a_scoped_identity_sees_only_its_studies() {
        let mut me = Identity {
            name: "bob".into(),
            role: Role::Viewer,
            studies: Some(vec![2]),
            access_control: true,
        };
        assert!(me.sees(2) && !me.sees(1));
        me.studies = None;
        assert!(me.sees(1));
    }
}
