//! The commands.
//!
//! Each works on a [`Backend`]: a store this process opens, or a server. Both answer with
//! the management API's views, and everything printed is rendered from those, so a command
//! prints the same either way.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::path::Path;

use serde::Serialize;
use tollgate::jiff::Timestamp;
use tollgate::{
    AuditFilter, DEFAULT_PAGE_SIZE, EncryptionKey, ListFilter, ListOptions, MAX_PAGE_SIZE,
    TokenFormat, TokenHasher, TokenId,
};
use tollgate_axum::management::TokenView;

use crate::args::{
    ApplyArgs, AuditArgs, Cli, Command, DeleteArgs, DownloadArgs, ListArgs, ModifyArgs, ShowArgs,
    VerifyArgs,
};
use crate::backend::{Access, Application, Backend, Change, Checked, Fresh, Settings, later};
use crate::output::{
    Destination, audit_table, details, emit, file_name, instant, json_text, table, write_stdout,
};
use crate::{Failure, complain, sentence};

/// Environment variable holding the hashing pepper (at least 16 bytes), if any.
const PEPPER_ENV: &str = "TOLLGATE_PEPPER";
/// Environment variable holding the recoverable-mode key (64 hex characters), if any.
const ENCRYPTION_KEY_ENV: &str = "TOLLGATE_ENCRYPTION_KEY";

pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    let json = cli.json();
    let serving = matches!(cli.command, Command::Serve(_));
    // Check what needs no store first, so bad input never creates a database file.
    let prefix = cli.prefix.as_deref().map(TokenFormat::new).transpose()?;
    let hasher = match std::env::var_os(PEPPER_ENV) {
        None => TokenHasher::default(),
        Some(pepper) => TokenHasher::with_pepper(pepper.as_encoded_bytes()).map_err(|e| {
            Failure::usage("invalid_key", format!("{PEPPER_ENV}: {}", sentence(&e)))
        })?,
    };
    let key = match std::env::var(ENCRYPTION_KEY_ENV) {
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Failure::usage(
                "invalid_key",
                format!(
                    "{ENCRYPTION_KEY_ENV}: an encryption key must be 64 hexadecimal characters (32 bytes)"
                ),
            ));
        }
        Ok(hex) => Some(EncryptionKey::from_hex(&hex).map_err(|e| {
            Failure::usage(
                "invalid_key",
                format!("{ENCRYPTION_KEY_ENV}: {}", sentence(&e)),
            )
        })?),
    };
    let mut settings = Settings {
        db: cli.db,
        store: cli.store,
        // `serve` runs on a store; see `args::check_sources`.
        server: if serving { None } else { cli.server },
        token_file: cli.token_file,
        prefix,
        hasher,
        key,
    };
    let owner = cli.owner.as_str();
    // The audit log spans owners: it is filtered by one only when one is given.
    let audit_owner = cli.owner_given.then_some(owner);
    match cli.command {
        Command::Apply(args) => apply(&settings, owner, json, args).await,
        Command::List(args) => list(&settings, owner, json, args).await,
        Command::Show(args) => show(&settings, owner, json, args).await,
        Command::Download(args) => download(&settings, owner, json, args).await,
        Command::Modify(args) => modify(&settings, owner, json, args).await,
        Command::Delete(args) => delete(&settings, owner, json, args).await,
        Command::Verify(args) => verify(&settings, json, args).await,
        Command::Audit(args) => audit(&settings, audit_owner, json, args).await,
        Command::Serve(args) => {
            if let Some(db) = args.db {
                settings.db = db;
            }
            if args.store.is_some() {
                settings.store = args.store;
            }
            let manager = settings.open_store(Access::Creating, true).await?;
            crate::serve::serve(manager, args.addr).await
        }
    }
}

fn parse_id(text: &str) -> Result<TokenId, Failure> {
    Ok(text.parse::<TokenId>()?)
}

/// A just-issued token for people: the secret on a line of its own.
fn announcement(verb: &str, view: &TokenView, secret: &str, file: Option<&Path>) -> String {
    let mut text = format!(
        "{verb} token {:?} (id {}).\n\n    {secret}\n\nCopy it now: it is not stored and will not be shown again.\n",
        view.name, view.id
    );
    if let Some(path) = file {
        let _ = writeln!(text, "Token file written to {}.", path.display());
    }
    text
}

async fn apply(
    settings: &Settings,
    owner: &str,
    json: bool,
    args: ApplyArgs,
) -> Result<(), Failure> {
    let destination = args
        .output
        .output
        .as_deref()
        .map(|path| Destination::prepare(path, args.output.force))
        .transpose()?;
    let backend = settings.open(Access::Creating).await?;
    let fresh = backend
        .apply(
            owner,
            Application {
                name: args.name,
                description: args.description,
                expires_at: args.expiry.expires_at,
                expires_in: args.expiry.expires_in,
                scopes: args.scopes,
            },
        )
        .await?;
    hand_over(&backend, &fresh, destination, json, Issuance::Applied).await
}

/// How a secret came to be in hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Issuance {
    /// `apply`: a new token, which can be taken back.
    Applied,
    /// `modify --regenerate`: the old secret is replaced, which cannot be taken back.
    Regenerated,
}

/// Hands a just-issued secret to the user: the token file first (when asked for), then
/// everything meant for standard output, rendered whole and written with one write and a
/// flush before the command reports success.
///
/// If standard output cannot be written (a closed pipe, a full disk), the secret may have
/// reached nobody. Then an applied token is deleted again, so that nothing stays issued whose
/// secret nobody saw; a regeneration cannot be undone, so the error says to regenerate
/// again. Either way the command fails with exit 3, unless the token file holds the secret.
/// If only the token file cannot be written, the secret is still printed: it exists nowhere
/// else.
async fn hand_over(
    backend: &Backend,
    fresh: &Fresh,
    destination: Option<Destination>,
    json: bool,
    issuance: Issuance,
) -> Result<(), Failure> {
    // The plaintext goes through these strings: wipe them when done (and reserve enough
    // that growing leaves no copy behind).
    let mut text = zeroize::Zeroizing::new(String::with_capacity(4096));
    let mut saved_to = None;
    let mut file_failure = None;
    if let Some(destination) = destination {
        match fresh.token_file(backend.now()) {
            Ok(file) => match destination {
                Destination::Stdout => text.push_str(&file),
                destination => match destination.write(&file) {
                    Ok(path) => saved_to = path,
                    Err(failure) => file_failure = Some(failure),
                },
            },
            Err(failure) => file_failure = Some(failure),
        }
    }
    let view = &fresh.0;
    if json {
        text.push_str(&zeroize::Zeroizing::new(json_text(view)));
    } else {
        let verb = match issuance {
            Issuance::Applied => "Issued",
            Issuance::Regenerated => "Regenerated",
        };
        text.push_str(&zeroize::Zeroizing::new(announcement(
            verb,
            &view.record,
            &view.token,
            saved_to.as_deref(),
        )));
        if let Some(until) = view.record.grace_until {
            let _ = writeln!(
                text,
                "The old secret keeps working until {}.",
                instant(until)
            );
        }
    }
    let Err(err) = write_stdout(&text) else {
        return file_failure.map_or(Ok(()), Err);
    };
    secret_not_shown(backend, fresh, issuance, &err, saved_to.as_deref()).await
}

/// Standard output failed with `err` after `fresh`'s secret was made: say where the secret
/// is, or take the token back, or say that the secret is lost.
async fn secret_not_shown(
    backend: &Backend,
    fresh: &Fresh,
    issuance: Issuance,
    err: &std::io::Error,
    saved_to: Option<&Path>,
) -> Result<(), Failure> {
    let record = &fresh.0.record;
    let token = format!("token {:?} (id {})", record.name, record.id);
    if let Some(path) = saved_to {
        complain(&format!(
            "warning: the secret of {token} could not be written to standard output ({err}); it is in the token file {}",
            path.display()
        ));
        return Ok(());
    }
    match issuance {
        Issuance::Applied => {
            // Restoring the state before apply: the lock-out guard has nothing to protect.
            let undone = backend.delete(&record.owner, record.id, true).await;
            Err(Failure::system(
                "output_error",
                match undone {
                    Ok(()) => format!(
                        "{token} was not issued: its secret could not be written to standard output ({err}), so the token was deleted again"
                    ),
                    Err(undo) => format!(
                        "the secret of {token} could not be written to standard output ({err}), and deleting the token failed too ({}); delete it with `tollgate delete {} --yes --force`",
                        undo.body().map(|b| b.error.message).unwrap_or_default(),
                        record.id
                    ),
                },
            ))
        }
        Issuance::Regenerated => {
            let old = match record.grace_until {
                Some(until) => format!("the old secret keeps working until {}", instant(until)),
                None => "the old secret no longer works".to_owned(),
            };
            Err(Failure::system(
                "output_error",
                format!(
                    "{token} was regenerated, but its new secret could not be written to standard output ({err}) and is lost; {old}; regenerate the token again: `tollgate modify {} --regenerate`",
                    record.id
                ),
            ))
        }
    }
}

async fn list(settings: &Settings, owner: &str, json: bool, args: ListArgs) -> Result<(), Failure> {
    let flag = |yes: bool, no: bool| match (yes, no) {
        (true, _) => Some(true),
        (_, true) => Some(false),
        _ => None,
    };
    let options = ListOptions {
        query: args.query,
        limit: Some(args.limit),
        cursor: args.cursor,
        filter: ListFilter {
            enabled: flag(args.enabled, args.disabled),
            expired: flag(args.expired, args.active),
        },
    };
    let backend = settings.open(Access::Existing).await?;
    let page = backend.list(owner, options).await?;
    if json {
        return emit(&json_text(&page));
    }
    if page.items.is_empty() {
        return emit("No tokens found.\n");
    }
    let mut text = table(&page.items, backend.prefix());
    if let Some(cursor) = page.next_cursor {
        let _ = write!(text, "\nMore tokens: add --cursor {cursor}\n");
    }
    emit(&text)
}

async fn show(settings: &Settings, owner: &str, json: bool, args: ShowArgs) -> Result<(), Failure> {
    let id = parse_id(&args.id)?;
    let backend = settings.open(Access::Existing).await?;
    let (view, version) = backend.get(owner, id).await?;
    if json {
        emit(&json_text(&view))
    } else {
        emit(&details(&view, version, backend.prefix()))
    }
}

/// What `download --json` prints.
#[derive(Serialize)]
struct Downloaded<'a> {
    /// Where the file was written.
    path: &'a Path,
    /// Whether it holds the secret.
    secret_included: bool,
}

async fn download(
    settings: &Settings,
    owner: &str,
    json: bool,
    args: DownloadArgs,
) -> Result<(), Failure> {
    let id = parse_id(&args.id)?;
    let backend = settings.open(Access::Existing).await?;
    let file = backend.download(owner, id).await?;
    let path = args
        .output
        .unwrap_or_else(|| file_name(&file.offered_name, &id.to_string()));
    let written = Destination::prepare(&path, args.force)?.write(&file.json)?;
    // With `-o -` the token file itself is the output.
    let Some(path) = written else {
        return Ok(());
    };
    if json {
        return emit(&json_text(&Downloaded {
            path: &path,
            secret_included: file.secret_included,
        }));
    }
    let mut text = format!("Token file written to {}.\n", path.display());
    if !file.secret_included {
        let _ = writeln!(
            text,
            "It does not contain the secret, which is not stored; run `tollgate modify {id} --regenerate -o FILE` for a new one."
        );
    }
    emit(&text)
}

async fn modify(
    settings: &Settings,
    owner: &str,
    json: bool,
    args: ModifyArgs,
) -> Result<(), Failure> {
    let id = parse_id(&args.id)?;
    let mut change = Change {
        name: args.name,
        description: args.description,
        expires_at: None,
        scopes: if args.no_scopes {
            Some(Vec::new())
        } else if args.scopes.is_empty() {
            None
        } else {
            Some(args.scopes)
        },
        enabled: (args.enable || args.disable).then_some(args.enable),
    };
    if let Some(at) = args.expires_at {
        change.expires_at = Some(Some(at));
    } else if args.no_expiry {
        change.expires_at = Some(None);
    }
    if change.is_empty() && args.expires_in.is_none() && !args.regenerate {
        return Err(Failure::usage(
            "nothing_to_change",
            format!(
                "nothing to change: give at least one of --name, --description, --expires-in, --expires-at, --no-expiry, --scope, --no-scopes, --enable, --disable, --regenerate (see `tollgate modify --help`); token {id} was left as it is"
            ),
        ));
    }
    let destination = args
        .output
        .as_deref()
        .map(|path| Destination::prepare(path, args.force))
        .transpose()?;
    let access = if args.regenerate {
        Access::Issuing
    } else {
        Access::Existing
    };
    let backend = settings.open(access).await?;
    if let Some(duration) = args.expires_in {
        change.expires_at = Some(Some(later(backend.now(), duration)?));
    }
    if !args.regenerate {
        let view = backend
            .modify(owner, id, change, args.if_version, args.force)
            .await?;
        return if json {
            emit(&json_text(&view))
        } else {
            emit(&format!(
                "Modified token {:?} (id {}).\n",
                view.name, view.id
            ))
        };
    }
    let fresh = backend
        .modify_and_regenerate(owner, id, change, args.grace, args.if_version, args.force)
        .await?;
    hand_over(&backend, &fresh, destination, json, Issuance::Regenerated).await
}

/// What `delete --json` prints: the id deleted, `null` when the answer was no.
#[derive(Serialize)]
struct Deleted {
    deleted: Option<TokenId>,
}

async fn delete(
    settings: &Settings,
    owner: &str,
    json: bool,
    args: DeleteArgs,
) -> Result<(), Failure> {
    let id = parse_id(&args.id)?;
    let backend = settings.open(Access::Existing).await?;
    let (view, _) = backend.get(owner, id).await?;
    if !args.yes && !confirm(&view)? {
        return if json {
            emit(&json_text(&Deleted { deleted: None }))
        } else {
            emit("Nothing was deleted.\n")
        };
    }
    backend.delete(owner, id, args.force).await?;
    if json {
        emit(&json_text(&Deleted { deleted: Some(id) }))
    } else {
        emit(&format!("Deleted token {:?} (id {id}).\n", view.name))
    }
}

/// Asks on the terminal whether to delete the token; refuses without a terminal.
fn confirm(view: &TokenView) -> Result<bool, Failure> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Err(Failure::usage(
            "confirmation_required",
            "refusing to delete without confirmation: standard input is not a terminal; pass --yes",
        ));
    }
    let mut stderr = std::io::stderr();
    let _ = write!(
        stderr,
        "Delete token {:?} (id {})? It stops working at once and cannot be restored. [y/N] ",
        view.name, view.id
    );
    let _ = stderr.flush();
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Failure::usage("usage", format!("cannot read the answer: {e}")))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

/// What `verify --json` prints.
#[derive(Serialize)]
struct Verified {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<TokenView>,
}

async fn verify(settings: &Settings, json: bool, args: VerifyArgs) -> Result<(), Failure> {
    let presented = zeroize::Zeroizing::new(match args.token {
        Some(token) => token,
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                let mut stderr = std::io::stderr();
                let _ = write!(stderr, "Token: ");
                let _ = stderr.flush();
            }
            let mut input = String::new();
            stdin.lock().take(4096).read_line(&mut input).map_err(|e| {
                Failure::usage(
                    "usage",
                    format!("cannot read the token from standard input: {e}"),
                )
            })?;
            input
        }
    });
    // A trailing newline from `echo` or a file is not part of the token.
    let presented = presented.trim();
    if presented.is_empty() {
        return Err(Failure::usage("usage", "no token given"));
    }
    let backend = settings.open(Access::Existing).await?;
    let outcome = backend.verify(presented).await?;
    let (text, reason) = match outcome {
        Checked::Valid(view) => {
            let text = if json {
                json_text(&Verified {
                    valid: true,
                    reason: None,
                    token: Some(*view),
                })
            } else {
                let scopes = if view.scopes.is_empty() {
                    "no scopes".to_owned()
                } else {
                    format!("scopes: {}", view.scopes.join(" "))
                };
                format!(
                    "valid: token {:?} (id {}) of owner {:?}, {scopes}\n",
                    view.name, view.id, view.owner
                )
            };
            (text, None)
        }
        Checked::Invalid(reason) => {
            let text = if json {
                json_text(&Verified {
                    valid: false,
                    reason: Some(reason.clone()),
                    token: None,
                })
            } else {
                String::new()
            };
            (text, Some(reason))
        }
    };
    // The answer is the exit code: a closed pipe does not change it.
    match emit(&text) {
        Ok(()) | Err(Failure::OutputClosed) => {}
        Err(failure) => return Err(failure),
    }
    match reason {
        None => Ok(()),
        Some(reason) => Err(Failure::Rejected(reason)),
    }
}

/// `tollgate audit`: one page of the log (a table, or `--json`), or with `--jsonl` every
/// matching entry, one JSON line each, following the pages.
async fn audit(
    settings: &Settings,
    owner: Option<&str>,
    json: bool,
    args: AuditArgs,
) -> Result<(), Failure> {
    // Everything is checked here, before any store or server is asked, so that a bad
    // filter reads the same either way.
    let token = args.token.as_deref().map(parse_id).transpose()?;
    let page_size = match (args.limit, args.jsonl) {
        (Some(0), true) => {
            return Err(Failure::usage(
                "invalid_limit",
                "invalid limit: with --jsonl, --limit is how many entries to print at most, at least 1",
            ));
        }
        (limit, true) => limit.map_or(MAX_PAGE_SIZE, |n| n.min(MAX_PAGE_SIZE)),
        (Some(n), false) if !(1..=MAX_PAGE_SIZE).contains(&n) => {
            return Err(tollgate::Error::InvalidLimit { max: MAX_PAGE_SIZE }.into());
        }
        (limit, false) => limit.unwrap_or(DEFAULT_PAGE_SIZE),
    };
    let now = Timestamp::now();
    let since = args.since.map(|when| when.resolve(now)).transpose()?;
    let until = args.until.map(|when| when.resolve(now)).transpose()?;
    if let (Some(since), Some(until)) = (since, until)
        && since > until
    {
        return Err(Failure::usage(
            "invalid_audit_filter",
            format!(
                "--since ({}) is after --until ({}): no entry can match",
                instant(since),
                instant(until)
            ),
        ));
    }
    let filter = AuditFilter {
        token,
        actor: args.actor,
        action: args.action,
        since,
        until,
        owner: args.owner.or_else(|| owner.map(str::to_owned)),
    };
    let backend = settings.open(Access::Existing).await?;
    if args.jsonl {
        return export(&backend, &filter, args.cursor, page_size, args.limit).await;
    }
    let page = backend
        .audit(&filter, args.cursor.as_deref(), page_size)
        .await?;
    if json {
        return emit(&json_text(&page));
    }
    if page.entries.is_empty() {
        return emit("No audit entries found.\n");
    }
    let mut text = audit_table(&page.entries);
    if let Some(cursor) = page.next_cursor {
        let _ = write!(text, "\nMore entries: add --cursor {cursor}\n");
    }
    emit(&text)
}

/// `audit --jsonl`: every entry `filter` matches after `cursor`, newest first, at most
/// `limit`, written page by page so that a long log never sits in memory whole.
async fn export(
    backend: &Backend,
    filter: &AuditFilter,
    mut cursor: Option<String>,
    page_size: usize,
    mut limit: Option<usize>,
) -> Result<(), Failure> {
    loop {
        let size = limit.map_or(page_size, |left| left.min(page_size));
        let page = backend.audit(filter, cursor.as_deref(), size).await?;
        let mut text = String::new();
        for entry in &page.entries {
            text.push_str(&entry.to_json_line());
            text.push('\n');
        }
        emit(&text)?;
        if let Some(left) = &mut limit {
            *left = left.saturating_sub(page.entries.len());
            if *left == 0 {
                return Ok(());
            }
        }
        // A page that brings nothing new, or the same cursor again, would loop for ever.
        match page.next_cursor {
            Some(next) if !page.entries.is_empty() && cursor.as_ref() != Some(&next) => {
                cursor = Some(next);
            }
            _ => return Ok(()),
        }
    }
}
