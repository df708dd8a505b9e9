//! The commands.

use std::fmt::Write as _;
use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};
use std::path::Path;

use serde::Serialize;
use tollgate::{
    DeleteOptions, EncryptionKey, Expiry, Issued, ListFilter, ListOptions, NewToken, Regenerate,
    TokenFormat, TokenHasher, TokenId, TokenManager, TokenUpdate, Verification,
};
use tollgate_postgres::PgStore;
use tollgate_redb::RedbStore;

use crate::api::ADMIN_SCOPE;
use crate::args::{
    ApplyArgs, Cli, Command, DeleteArgs, DownloadArgs, ListArgs, ModifyArgs, VerifyArgs,
};
use crate::output::{
    Destination, JsonToken, details, emit, file_name, json_text, table, write_stdout,
};
use crate::{Failure, complain, sentence};

/// Environment variable holding the hashing pepper (at least 16 bytes), if any.
const PEPPER_ENV: &str = "TOLLGATE_PEPPER";
/// Environment variable holding the recoverable-mode key (64 hex characters), if any.
const ENCRYPTION_KEY_ENV: &str = "TOLLGATE_ENCRYPTION_KEY";

pub(crate) async fn run(cli: Cli) -> Result<(), Failure> {
    // Check what needs no store first, so bad input never creates a database file.
    let format = TokenFormat::new(&cli.prefix)?;
    let hasher = match std::env::var_os(PEPPER_ENV) {
        None => TokenHasher::default(),
        Some(pepper) => TokenHasher::with_pepper(pepper.as_encoded_bytes())
            .map_err(|e| Failure::Usage(format!("{PEPPER_ENV}: {}", sentence(&e))))?,
    };
    let key = match std::env::var(ENCRYPTION_KEY_ENV) {
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(_)) => {
            return Err(Failure::Usage(format!(
                "{ENCRYPTION_KEY_ENV}: {}",
                "an encryption key must be 64 hexadecimal characters (32 bytes)"
            )));
        }
        Ok(hex) => Some(
            EncryptionKey::from_hex(&hex)
                .map_err(|e| Failure::Usage(format!("{ENCRYPTION_KEY_ENV}: {}", sentence(&e))))?,
        ),
    };
    let settings = Settings {
        db: cli.db.clone(),
        store: cli.store.clone(),
        format,
        hasher,
        key,
    };
    let owner = cli.owner.as_str();
    let json = cli.json;
    match cli.command {
        Command::Apply(args) => apply(&settings.open().await?, owner, json, args).await,
        Command::List(args) => list(&settings.open().await?, owner, json, args).await,
        Command::Show(args) => {
            let id = parse_id(&args.id)?;
            let manager = settings.open().await?;
            let record = manager.get(owner, id).await?;
            if json {
                emit(&json_text(&record.info()))
            } else {
                emit(&details(&record, manager.now()))
            }
        }
        Command::Download(args) => download(&settings.open().await?, owner, json, args).await,
        Command::Modify(args) => modify(&settings.open().await?, owner, json, args).await,
        Command::Delete(args) => delete(&settings.open().await?, owner, json, args).await,
        Command::Verify(args) => verify(&settings, json, args).await,
        Command::Serve(args) => crate::serve::serve(settings.open().await?, args.addr).await,
    }
}

/// Where the tokens are and how they are made: everything needed to open the manager.
struct Settings {
    db: std::path::PathBuf,
    store: Option<String>,
    format: TokenFormat,
    hasher: TokenHasher,
    key: Option<EncryptionKey>,
}

impl Settings {
    /// Opens the store (redb by default, PostgreSQL with `--store`) only once the input has
    /// been checked, so that bad input never creates a database file.
    async fn open(&self) -> Result<TokenManager, Failure> {
        let manager = match &self.store {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let store = PgStore::connect(url).await.map_err(|err| {
                    let message = format!("cannot use the PostgreSQL store: {}", sentence(&err));
                    if err.is_transient() {
                        Failure::Store(message)
                    } else {
                        Failure::Usage(message)
                    }
                })?;
                TokenManager::new(store)
            }
            Some(_) => {
                return Err(Failure::Usage(
                    "--store must be a postgres:// URL; leave it out to use the redb file given by --db".to_owned(),
                ));
            }
            None => {
                let store = RedbStore::open(&self.db).map_err(|err| {
                    let message = sentence(&err);
                    match err {
                        tollgate_redb::RedbStoreError::Locked { .. } => Failure::Store(message),
                        _ => Failure::Usage(message),
                    }
                })?;
                TokenManager::new(store)
            }
        };
        // The CLI refuses, as `serve` does, to remove the last way into the management API.
        let mut manager = manager
            .with_format(self.format.clone())
            .with_hasher(self.hasher.clone())
            .with_protected_scope(ADMIN_SCOPE);
        if let Some(key) = &self.key {
            manager = manager.with_encryption_key(key.clone());
        }
        Ok(manager)
    }
}

fn parse_id(text: &str) -> Result<TokenId, Failure> {
    Ok(text.parse::<TokenId>()?)
}

/// A just-issued token for people: the secret on a line of its own.
fn announcement(
    verb: &str,
    record: &tollgate::TokenRecord,
    secret: &str,
    file: Option<&Path>,
) -> String {
    let mut text = format!(
        "{verb} token {:?} (id {}).\n\n    {secret}\n\nCopy it now: it is not stored and will not be shown again.\n",
        record.name, record.id
    );
    if let Some(path) = file {
        let _ = writeln!(text, "Token file written to {}.", path.display());
    }
    text
}

async fn apply(
    manager: &TokenManager,
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
    let expiry = match (args.expiry.expires_in, args.expiry.expires_at) {
        (Some(duration), _) => Some(Expiry::In(duration)),
        (None, Some(at)) => Some(Expiry::At(at)),
        (None, None) => None,
    };
    let mut new = NewToken::new(args.name).expiry(expiry).scopes(args.scopes);
    if let Some(description) = args.description {
        new = new.description(description);
    }
    let issued = manager.apply(owner, new).await?;
    hand_over(manager, &issued, destination, json, Issuance::Applied).await
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
    manager: &TokenManager,
    issued: &Issued,
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
        let file = zeroize::Zeroizing::new(issued.token_file(manager.now()).to_json());
        match destination {
            Destination::Stdout => text.push_str(&file),
            destination => match destination.write(&file) {
                Ok(path) => saved_to = path,
                Err(failure) => file_failure = Some(failure),
            },
        }
    }
    let secret = issued.token.expose_secret();
    if json {
        text.push_str(&zeroize::Zeroizing::new(json_text(&JsonToken {
            info: issued.record.info(),
            token: Some(secret),
        })));
    } else {
        let verb = match issuance {
            Issuance::Applied => "Issued",
            Issuance::Regenerated => "Regenerated",
        };
        text.push_str(&zeroize::Zeroizing::new(announcement(
            verb,
            &issued.record,
            secret,
            saved_to.as_deref(),
        )));
        if let Some(previous) = &issued.record.previous_secret {
            let _ = writeln!(
                text,
                "The old secret keeps working until {}.",
                previous.valid_until.strftime("%Y-%m-%d %H:%M:%S UTC")
            );
        }
    }
    let Err(err) = write_stdout(&text) else {
        return file_failure.map_or(Ok(()), Err);
    };
    secret_not_shown(manager, issued, issuance, &err, saved_to.as_deref()).await
}

/// Standard output failed with `err` after `issued`'s secret was made: say where the secret
/// is, or take the token back, or say that the secret is lost.
async fn secret_not_shown(
    manager: &TokenManager,
    issued: &Issued,
    issuance: Issuance,
    err: &std::io::Error,
    saved_to: Option<&Path>,
) -> Result<(), Failure> {
    let record = &issued.record;
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
            let undone = manager
                .delete_with(
                    &record.owner,
                    record.id,
                    DeleteOptions::default().force(true),
                )
                .await;
            Err(Failure::Store(match undone {
                Ok(()) => format!(
                    "{token} was not issued: its secret could not be written to standard output ({err}), so the token was deleted again"
                ),
                Err(undo) => format!(
                    "the secret of {token} could not be written to standard output ({err}), and deleting the token failed too ({}); delete it with `tollgate delete {} --yes --force`",
                    undo.report(),
                    record.id
                ),
            }))
        }
        Issuance::Regenerated => {
            let old = match &record.previous_secret {
                Some(previous) => format!(
                    "the old secret keeps working until {}",
                    previous.valid_until.strftime("%Y-%m-%d %H:%M:%S UTC")
                ),
                None => "the old secret no longer works".to_owned(),
            };
            Err(Failure::Store(format!(
                "{token} was regenerated, but its new secret could not be written to standard output ({err}) and is lost; {old}; regenerate the token again: `tollgate modify {} --regenerate`",
                record.id
            )))
        }
    }
}

#[derive(Serialize)]
struct JsonPage {
    items: Vec<tollgate::TokenInfo>,
    next_cursor: Option<String>,
}

async fn list(
    manager: &TokenManager,
    owner: &str,
    json: bool,
    args: ListArgs,
) -> Result<(), Failure> {
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
    let page = manager.list(owner, options).await?;
    if json {
        return emit(&json_text(&JsonPage {
            items: page.items.iter().map(tollgate::TokenRecord::info).collect(),
            next_cursor: page.next_cursor,
        }));
    }
    if page.items.is_empty() {
        return emit("No tokens found.\n");
    }
    let mut text = table(&page.items, manager.now());
    if let Some(cursor) = page.next_cursor {
        let _ = write!(text, "\nMore tokens: add --cursor {cursor}\n");
    }
    emit(&text)
}

async fn download(
    manager: &TokenManager,
    owner: &str,
    json: bool,
    args: DownloadArgs,
) -> Result<(), Failure> {
    let id = parse_id(&args.id)?;
    let file = manager.download(owner, id).await?;
    let path = args
        .output
        .unwrap_or_else(|| file_name(&file.token.name, &id.to_string()));
    let written = Destination::prepare(&path, args.force)?.write(&file.to_json())?;
    let Some(path) = written else {
        return Ok(());
    };
    if json {
        return emit(&json_text(&serde_json::json!({
            "path": path,
            "secret_included": file.secret_included(),
        })));
    }
    let mut text = format!("Token file written to {}.\n", path.display());
    if !file.secret_included() {
        let _ = writeln!(
            text,
            "It does not contain the secret, which is not stored; run `tollgate modify {id} --regenerate -o FILE` for a new one."
        );
    }
    emit(&text)
}

async fn modify(
    manager: &TokenManager,
    owner: &str,
    json: bool,
    args: ModifyArgs,
) -> Result<(), Failure> {
    let id = parse_id(&args.id)?;
    let destination = args
        .output
        .as_deref()
        .map(|path| Destination::prepare(path, args.force))
        .transpose()?;
    let mut update = TokenUpdate::default();
    if let Some(name) = args.name {
        update = update.name(name);
    }
    if let Some(description) = args.description {
        update = update.description(description);
    }
    if let Some(duration) = args.expires_in {
        let at = manager
            .now()
            .checked_add(duration)
            .map_err(|_| Failure::Usage("the expiry is too far in the future".to_owned()))?;
        update = update.expires_at(Some(at));
    } else if let Some(at) = args.expires_at {
        update = update.expires_at(Some(at));
    } else if args.no_expiry {
        update = update.expires_at(None);
    }
    if args.no_scopes {
        update = update.scopes(Vec::<String>::new());
    } else if !args.scopes.is_empty() {
        update = update.scopes(args.scopes);
    }
    if args.enable || args.disable {
        update = update.enabled(args.enable);
    }
    if let Some(version) = args.if_version {
        update = update.expected_version(version);
    }
    update = update.force(args.force);
    if !args.regenerate {
        let record = manager.modify(owner, id, update).await?;
        return if json {
            emit(&json_text(&record.info()))
        } else {
            emit(&format!(
                "Modified token {:?} (id {}).\n",
                record.name, record.id
            ))
        };
    }
    let mut regenerate = Regenerate::default();
    if let Some(grace) = args.grace {
        regenerate = regenerate.grace(grace);
    }
    let issued = manager
        .modify_and_regenerate(owner, id, update, regenerate)
        .await?;
    hand_over(manager, &issued, destination, json, Issuance::Regenerated).await
}

async fn delete(
    manager: &TokenManager,
    owner: &str,
    json: bool,
    args: DeleteArgs,
) -> Result<(), Failure> {
    let id = parse_id(&args.id)?;
    let record = manager.get(owner, id).await?;
    if !args.yes {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return Err(Failure::Usage(
                "refusing to delete without confirmation: standard input is not a terminal; pass --yes".to_owned(),
            ));
        }
        let mut stderr = std::io::stderr();
        let _ = write!(
            stderr,
            "Delete token {:?} (id {id})? It stops working at once and cannot be restored. [y/N] ",
            record.name
        );
        let _ = stderr.flush();
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Failure::Usage(format!("cannot read the answer: {e}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(Failure::Usage("not deleted".to_owned()));
        }
    }
    manager
        .delete_with(owner, id, DeleteOptions::default().force(args.force))
        .await?;
    if json {
        emit(&json_text(&serde_json::json!({ "deleted": id })))
    } else {
        emit(&format!("Deleted token {:?} (id {id}).\n", record.name))
    }
}

#[derive(Serialize)]
struct JsonVerification {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<tollgate::TokenInfo>,
}

async fn verify(settings: &Settings, json: bool, args: VerifyArgs) -> Result<(), Failure> {
    let presented = match args.token {
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
                Failure::Usage(format!("cannot read the token from standard input: {e}"))
            })?;
            input
        }
    };
    // A trailing newline from `echo` or a file is not part of the token.
    let presented = presented.trim();
    if presented.is_empty() {
        return Err(Failure::Usage("no token given".to_owned()));
    }
    let manager = settings.open().await?;
    let outcome = manager.verify(presented).await?;
    // Record the use now: a CLI process does not live to flush later.
    manager.flush_last_used().await?;
    let reason = outcome.failure_reason();
    let text = if json {
        json_text(&JsonVerification {
            valid: outcome.is_valid(),
            reason: reason.clone(),
            token: outcome.record().map(tollgate::TokenRecord::info),
        })
    } else if let Verification::Valid(record) = &outcome {
        let scopes = if record.scopes.is_empty() {
            "no scopes".to_owned()
        } else {
            format!("scopes: {}", record.scopes.join(" "))
        };
        format!(
            "valid: token {:?} (id {}) of owner {:?}, {scopes}\n",
            record.name, record.id, record.owner
        )
    } else {
        String::new()
    };
    // The answer is the exit code: a closed pipe does not change it.
    match emit(&text) {
        Ok(()) | Err(Failure::OutputClosed) => {}
        Err(failure) => return Err(failure),
    }
    match reason {
        None => Ok(()),
        Some(reason) => Err(Failure::NotFound(reason)),
    }
}
