//! `failscope serve` and `failscope token`: the web server, and the access tokens a shared one
//! requires.

use std::io::Write;
use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;

use clap::Subcommand;
use failscope_shared::api::Role;

use super::import::{import, open_store};
use super::{CliError, DbArg, Definitions};
use crate::error::InputError;
use crate::http::{self, access::Access};
use crate::store::StoreError;

/// `failscope serve`'s flags.
#[derive(clap::Args, Debug)]
pub(super) struct ServeArgs {
    /// Address to listen on. Any address but a loopback one is reachable from other machines and
    /// needs access tokens (`failscope token create`).
    #[arg(long, env = "FAILSCOPE_ADDR", default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Require access tokens on a loopback address too.
    #[arg(long)]
    auth: bool,
    /// Requests per second each client (token, or address) may make, in bursts of five seconds'
    /// worth; 0 turns the limit off.
    #[arg(long, default_value_t = http::access::DEFAULT_RATE.get())]
    rate_limit: u32,
    /// The built frontend (`cargo xtask web` writes it).
    #[arg(long, env = "FAILSCOPE_DIST", default_value = "dist")]
    dist: PathBuf,
    #[command(flatten)]
    db: DbArg,
    /// FD-Shifts experiment folders to import before serving (skipped if a study of that source exists).
    #[arg(long = "import")]
    imports: Vec<PathBuf>,
}

/// `failscope token …`.
#[derive(Debug, Subcommand)]
pub(super) enum TokenAction {
    /// Create an access token and print it (once: only its hash is stored).
    Create {
        /// A unique name: the person or service it is for.
        #[arg(long)]
        name: String,
        /// `viewer` reads; `analyst` also starts jobs and creates share links.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Limit the token to these studies (repeat the flag); other studies do not exist for it.
        #[arg(long = "study")]
        studies: Vec<i64>,
        #[command(flatten)]
        db: DbArg,
    },
    /// List the tokens: name, role, studies, creation time (never the tokens).
    List {
        #[command(flatten)]
        db: DbArg,
    },
    /// Revoke a token by its name: it signs in no more, also where it is signed in already.
    Revoke {
        /// The token's name.
        name: String,
        #[command(flatten)]
        db: DbArg,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
}

/// Refusals of the store (a taken name, an unknown study) are the user's input: exit 2.
fn refused(e: StoreError) -> CliError {
    match e {
        StoreError::Refused(m) => InputError::item("token", m).into(),
        e => e.into(),
    }
}

pub(super) fn token(action: TokenAction, out: &mut dyn Write) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Other(format!("writing output: {e}"));
    match action {
        TokenAction::Create {
            name,
            role,
            studies,
            db,
        } => {
            let store = open_store(&db.db)?;
            let scope = (!studies.is_empty()).then_some(studies.as_slice());
            let token = store.create_token(&name, role, scope).map_err(refused)?;
            writeln!(out, "{token}").map_err(io)?;
        }
        TokenAction::List { db } => {
            let store = open_store(&db.db)?;
            for t in store.tokens()? {
                let studies = t.studies.map_or("all studies".to_string(), |s| {
                    let ids: Vec<String> = s.iter().map(i64::to_string).collect();
                    format!("studies {}", ids.join(","))
                });
                writeln!(out, "{}\t{}\t{studies}\t{}", t.name, t.role, t.created_at).map_err(io)?;
            }
        }
        TokenAction::Revoke { name, db } => {
            let store = open_store(&db.db)?;
            if !store.revoke_token(&name)? {
                return Err(
                    InputError::item("token", format!("no token named {name:?} in {}", db.db.display())).into(),
                );
            }
            writeln!(out, "revoked {name}").map_err(io)?;
        }
    }
    Ok(())
}

pub(super) fn serve(args: ServeArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let io = |e: std::io::Error| CliError::Other(format!("writing output: {e}"));
    let ServeArgs {
        addr,
        auth,
        rate_limit,
        dist,
        db,
        imports,
    } = args;
    let mut store = open_store(&db.db)?;
    // Reachable from other machines: never without tokens.
    let tokens = auth || !addr.ip().is_loopback();
    if tokens && !store.has_tokens()? {
        let why = if auth {
            "--auth".to_string()
        } else {
            format!("{addr} is reachable from other machines, so it")
        };
        return Err(InputError::item(
            "serve",
            format!(
                "{why} needs access tokens, and the store {} has none: create one with `failscope token create --name NAME --role analyst`",
                db.db.display()
            ),
        )
        .into());
    }
    let known: Vec<String> = store.list()?.into_iter().map(|s| s.source).collect();
    for dir in &imports {
        let source = dir.canonicalize().unwrap_or_else(|_| dir.clone()).display().to_string();
        if !known.contains(&source) {
            import(&mut store, dir, None, &Definitions::default())?;
        }
    }
    if !dist.join("index.html").is_file() {
        return Err(InputError::file(&dist, "no index.html: build the frontend first (`cargo xtask web`)").into());
    }
    let state =
        http::AppState::new(store, db.db.clone(), dist)?.with_access(Access::new(tokens, NonZeroU32::new(rate_limit)));
    let rt = tokio::runtime::Runtime::new().map_err(|e| CliError::Other(e.to_string()))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| CliError::Other(format!("cannot listen on {addr}: {e}")))?;
        let access = if tokens {
            "access tokens required"
        } else {
            "no access control: loopback only"
        };
        writeln!(out, "failscope serving on http://{addr} ({access})").map_err(io)?;
        out.flush().map_err(io)?;
        axum::serve(
            listener,
            http::app(state).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await
        .map_err(|e| CliError::Other(e.to_string()))
    })
}
