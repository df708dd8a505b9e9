//! The commands.

use std::io::{BufRead as _, IsTerminal as _, Read as _, Write as _};

use serde::Serialize;
use tollgate::{
    EncryptionKey, Expiry, ListFilter, ListOptions, NewToken, Regenerate, TokenFormat, TokenHasher,
    TokenId, TokenManager, TokenUpdate, Verification,
};
use tollgate_postgres::PgStore;
use tollgate_redb::RedbStore;

use crate::args::{
    ApplyArgs, Cli, Command, DeleteArgs, DownloadArgs, ListArgs, ModifyArgs, VerifyArgs,
};
use crate::output::{Destination, JsonToken, details, file_name, print_json, table};
use crate::{Failure, sentence};

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
                print_json(&record.info());
            } else {
                print!("{}", details(&record, manager.now()));
            }
            Ok(())
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
        let mut manager = manager
            .with_format(self.format.clone())
            .with_hasher(self.hasher.clone());
        if let Some(key) = &self.key {
            manager = manager.with_encryption_key(key.clone());
        }
        Ok(manager)
    }
}

fn parse_id(text: &str) -> Result<TokenId, Failure> {
    Ok(text.parse::<TokenId>()?)
}

/// Prints a just-issued token for people: the secret on a line of its own.
fn announce(
    verb: &str,
    record: &tollgate::TokenRecord,
    secret: &str,
    file: Option<&std::path::Path>,
) {
    println!("{verb} token {:?} (id {}).", record.name, record.id);
    println!();
    println!("    {secret}");
    println!();
    println!("Copy it now: it is not stored and will not be shown again.");
    if let Some(path) = file {
        println!("Token file written to {}.", path.display());
    }
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
    hand_over("Issued", manager, &issued, destination, json)
}

/// Hands a just-issued secret to the user: the token file first (when asked for), then the
/// secret on standard output. If the file cannot be written, the secret is still printed:
/// it exists nowhere else.
fn hand_over(
    verb: &str,
    manager: &TokenManager,
    issued: &tollgate::Issued,
    destination: Option<Destination>,
    json: bool,
) -> Result<(), Failure> {
    let written = match destination {
        Some(destination) => match destination.write(&issued.token_file(manager.now()).to_json()) {
            Ok(path) => path,
            Err(failure) => {
                announce(verb, &issued.record, issued.token.expose_secret(), None);
                return Err(failure);
            }
        },
        None => None,
    };
    if json {
        print_json(&JsonToken {
            info: issued.record.info(),
            token: Some(issued.token.expose_secret()),
        });
    } else {
        announce(
            verb,
            &issued.record,
            issued.token.expose_secret(),
            written.as_deref(),
        );
        if let Some(previous) = &issued.record.previous_secret {
            println!(
                "The old secret keeps working until {}.",
                previous.valid_until.strftime("%Y-%m-%d %H:%M:%S UTC")
            );
        }
    }
    Ok(())
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
        print_json(&JsonPage {
            items: page.items.iter().map(tollgate::TokenRecord::info).collect(),
            next_cursor: page.next_cursor,
        });
        return Ok(());
    }
    if page.items.is_empty() {
        println!("No tokens found.");
        return Ok(());
    }
    print!("{}", table(&page.items, manager.now()));
    if let Some(cursor) = page.next_cursor {
        println!();
        println!("More tokens: add --cursor {cursor}");
    }
    Ok(())
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
    if let Some(path) = written {
        if json {
            print_json(&serde_json::json!({
                "path": path,
                "secret_included": file.secret_included(),
            }));
        } else {
            println!("Token file written to {}.", path.display());
            if !file.secret_included() {
                println!(
                    "It does not contain the secret, which is not stored; run `tollgate modify {id} --regenerate -o FILE` for a new one."
                );
            }
        }
    }
    Ok(())
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
    if !args.regenerate {
        let record = manager.modify(owner, id, update).await?;
        if json {
            print_json(&record.info());
        } else {
            println!("Modified token {:?} (id {}).", record.name, record.id);
        }
        return Ok(());
    }
    let mut regenerate = Regenerate::default();
    if let Some(grace) = args.grace {
        regenerate = regenerate.grace(grace);
    }
    let issued = manager
        .modify_and_regenerate(owner, id, update, regenerate)
        .await?;
    hand_over("Regenerated", manager, &issued, destination, json)
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
        eprint!(
            "Delete token {:?} (id {id})? It stops working at once and cannot be restored. [y/N] ",
            record.name
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        stdin
            .lock()
            .read_line(&mut answer)
            .map_err(|e| Failure::Usage(format!("cannot read the answer: {e}")))?;
        if !matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
            return Err(Failure::Usage("not deleted".to_owned()));
        }
    }
    manager.delete(owner, id).await?;
    if json {
        print_json(&serde_json::json!({ "deleted": id }));
    } else {
        println!("Deleted token {:?} (id {id}).", record.name);
    }
    Ok(())
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
                eprint!("Token: ");
                let _ = std::io::stderr().flush();
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
    if json {
        print_json(&JsonVerification {
            valid: outcome.is_valid(),
            reason: reason.clone(),
            token: outcome.record().map(tollgate::TokenRecord::info),
        });
    }
    match (&outcome, reason) {
        (Verification::Valid(record), _) => {
            if !json {
                let scopes = if record.scopes.is_empty() {
                    "no scopes".to_owned()
                } else {
                    format!("scopes: {}", record.scopes.join(" "))
                };
                println!(
                    "valid: token {:?} (id {}) of owner {:?}, {scopes}",
                    record.name, record.id, record.owner
                );
            }
            Ok(())
        }
        (_, reason) => Err(Failure::NotFound(reason.unwrap_or_default())),
    }
}
