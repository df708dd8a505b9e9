//! Command-line arguments.

use std::path::PathBuf;

use clap::parser::ValueSource;
use clap::{Args, Parser, Subcommand};
use tollgate::AuditAction;
use tollgate::jiff::{SignedDuration, Span, SpanRelativeTo, Timestamp};

use crate::Failure;

/// Manage API tokens: apply, list, search, download, modify, delete and verify; read the
/// audit log of every change.
///
/// Tokens live in an embedded redb file (`apply` and `serve` create it) or in PostgreSQL
/// (`--store`); with `--server`, every command goes through the management API of a running
/// `tollgate serve` instead. `serve` offers the same over HTTP. Exit codes: 0 success, 1
/// verification failed or token not found, 2 bad input, usage or a conflict (a name taken,
/// a version changed, the last admin token, a token the server refused), 3 the token store or
/// the server failed or cannot be reached, or standard output could not be written.
#[derive(Debug, Parser)]
#[command(name = "tollgate", version, propagate_version = true)]
pub(crate) struct Cli {
    /// The token database file.
    #[arg(
        long,
        env = "TOLLGATE_DB",
        value_name = "PATH",
        default_value = "tollgate.redb"
    )]
    pub(crate) db: PathBuf,

    /// Keep tokens in PostgreSQL instead of the redb file (`postgres://user@host/db`), so that
    /// several servers share them.
    #[arg(long, env = "TOLLGATE_DATABASE_URL", value_name = "URL")]
    pub(crate) store: Option<String>,

    /// Work through the management API of a running `tollgate serve` at URL (e.g.
    /// `http://127.0.0.1:8080`) instead of on a store; needs an admin token in
    /// `TOLLGATE_TOKEN` or --token-file.
    #[arg(long, env = "TOLLGATE_SERVER", value_name = "URL")]
    pub(crate) server: Option<String>,

    /// With --server: read the admin token from PATH (the token on a line, or a token file
    /// with its secret) instead of `TOLLGATE_TOKEN`.
    #[arg(long, value_name = "PATH")]
    pub(crate) token_file: Option<PathBuf>,

    /// Whose tokens to work on (an account or tenant).
    #[arg(long, env = "TOLLGATE_OWNER", default_value = "default")]
    pub(crate) owner: String,

    /// The prefix of issued tokens (lower-case letters and digits). A store keeps the prefix
    /// it was created with (`tg` unless given); a different one is refused.
    #[arg(long, env = "TOLLGATE_PREFIX")]
    pub(crate) prefix: Option<String>,

    /// Print machine-readable JSON instead of text (also accepted after the command).
    #[arg(long)]
    pub(crate) json: bool,

    #[command(subcommand)]
    pub(crate) command: Command,

    /// Whether `--owner` (or `TOLLGATE_OWNER`) was given rather than defaulted: `audit`
    /// filters by owner only then.
    #[arg(skip)]
    pub(crate) owner_given: bool,
}

impl Cli {
    /// Whether output, errors included, is JSON: `--json` before or after the command.
    pub(crate) fn json(&self) -> bool {
        self.json
            || match &self.command {
                Command::Apply(args) => args.json.json,
                Command::List(args) => args.json.json,
                Command::Show(args) => args.json.json,
                Command::Download(args) => args.json.json,
                Command::Modify(args) => args.json.json,
                Command::Delete(args) => args.json.json,
                Command::Verify(args) => args.json.json,
                Command::Audit(args) => args.json.json,
                Command::Serve(_) => false,
            }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Issue a new token; its secret is printed this once.
    Apply(ApplyArgs),
    /// List tokens, newest first, or fuzzy-search their names.
    List(ListArgs),
    /// Show one token.
    Show(ShowArgs),
    /// Write a token's information to a token file.
    Download(DownloadArgs),
    /// Change a token: rename, describe, expiry, scopes, enable/disable, regenerate.
    Modify(ModifyArgs),
    /// Delete a token for good; it stops verifying at once.
    Delete(DeleteArgs),
    /// Check a token; exit 0 when valid, 1 when not.
    Verify(VerifyArgs),
    /// Read the audit log: who applied, changed or deleted which token, and when.
    Audit(AuditArgs),
    /// Serve the management API (`/api/v1`) and a guarded demo API over HTTP.
    Serve(ServeArgs),
}

/// `--json` on a command.
#[derive(Debug, Args)]
pub(crate) struct JsonArg {
    /// Print machine-readable JSON instead of text; errors too, on standard error.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// The address to listen on.
    #[arg(long, env = "TOLLGATE_ADDR", default_value = "127.0.0.1:8080")]
    pub(crate) addr: std::net::SocketAddr,
    /// The token database file (the same as `tollgate --db PATH serve`).
    #[arg(long, value_name = "PATH")]
    pub(crate) db: Option<PathBuf>,
    /// Keep tokens in PostgreSQL (the same as `tollgate --store URL serve`).
    #[arg(long, value_name = "URL")]
    pub(crate) store: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// The token's id (32 hexadecimal characters, as `list` shows).
    pub(crate) id: String,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

#[derive(Debug, Args)]
#[group(multiple = false)]
pub(crate) struct ExpiryArgs {
    /// Expire this long from now, e.g. `30d`, `12h`, `1w`, `90m`.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION")]
    pub(crate) expires_in: Option<SignedDuration>,
    /// Expire at this instant (RFC 3339, e.g. `2027-01-31T00:00:00Z`).
    #[arg(long, value_parser = parse_timestamp, value_name = "RFC3339")]
    pub(crate) expires_at: Option<Timestamp>,
}

#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// Also write the token file, secret included, to FILE (`-` for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Overwrite FILE if it exists.
    #[arg(long, requires = "output")]
    pub(crate) force: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The token's name: 1–100 characters, unique for the owner.
    pub(crate) name: String,
    /// What the token is for.
    #[arg(long)]
    pub(crate) description: Option<String>,
    #[command(flatten)]
    pub(crate) expiry: ExpiryArgs,
    /// A scope the token carries; repeat for several.
    #[arg(long = "scope", value_name = "SCOPE")]
    pub(crate) scopes: Vec<String>,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Fuzzy search over names: typos, any word order, abbreviations are fine.
    pub(crate) query: Option<String>,
    /// Tokens per page (1–1000).
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,
    /// Continue after a previous page (the cursor it printed).
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Only enabled tokens.
    #[arg(long, conflicts_with = "disabled")]
    pub(crate) enabled: bool,
    /// Only disabled tokens.
    #[arg(long)]
    pub(crate) disabled: bool,
    /// Only expired tokens.
    #[arg(long, conflicts_with = "active")]
    pub(crate) expired: bool,
    /// Only tokens that have not expired.
    #[arg(long)]
    pub(crate) active: bool,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct DownloadArgs {
    /// The token's id.
    pub(crate) id: String,
    /// Where to write (`-` for standard output). Default: the token's name, made safe for a
    /// file system, with `.token.json`.
    #[arg(short, long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct ModifyArgs {
    /// The token's id.
    pub(crate) id: String,
    /// A new name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// A new description (empty to clear).
    #[arg(long)]
    pub(crate) description: Option<String>,
    /// Expire this long from now, e.g. `30d`.
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", group = "expiry")]
    pub(crate) expires_in: Option<SignedDuration>,
    /// Expire at this instant (RFC 3339).
    #[arg(long, value_parser = parse_timestamp, value_name = "RFC3339", group = "expiry")]
    pub(crate) expires_at: Option<Timestamp>,
    /// Never expire.
    #[arg(long, group = "expiry")]
    pub(crate) no_expiry: bool,
    /// Replace the scopes; repeat for several.
    #[arg(long = "scope", value_name = "SCOPE", conflicts_with = "no_scopes")]
    pub(crate) scopes: Vec<String>,
    /// Remove every scope.
    #[arg(long)]
    pub(crate) no_scopes: bool,
    /// Enable the token.
    #[arg(long, conflicts_with = "disable")]
    pub(crate) enable: bool,
    /// Disable the token: it fails verification until enabled again.
    #[arg(long)]
    pub(crate) disable: bool,
    /// Replace the secret; the new one is printed this once.
    #[arg(long)]
    pub(crate) regenerate: bool,
    /// With --regenerate: keep the old secret working this long (e.g. `10m`, at most 30d).
    #[arg(long, value_parser = parse_duration, value_name = "DURATION", requires = "regenerate")]
    pub(crate) grace: Option<SignedDuration>,
    /// Only if the token is still at this version (as `show` prints).
    #[arg(long, value_name = "VERSION")]
    pub(crate) if_version: Option<u64>,
    /// With --regenerate: also write the token file, new secret included, to FILE.
    #[arg(short, long, value_name = "FILE", requires = "regenerate")]
    pub(crate) output: Option<PathBuf>,
    /// Go ahead even if this disables the last enabled token with the `tollgate:admin` scope
    /// or takes that scope away from it; with -o, also overwrite FILE if it exists.
    ///
    /// Warning: this can lock every administrator out of the management API of `tollgate
    /// serve` until a new admin token is issued with `tollgate apply NAME --scope
    /// tollgate:admin` on the store itself.
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct DeleteArgs {
    /// The token's id.
    pub(crate) id: String,
    /// Do not ask for confirmation (required when standard input is not a terminal).
    #[arg(long, short)]
    pub(crate) yes: bool,
    /// Delete even the last enabled token with the `tollgate:admin` scope.
    ///
    /// Warning: this can lock every administrator out of the management API of `tollgate
    /// serve` until a new admin token is issued with `tollgate apply NAME --scope
    /// tollgate:admin` on the store itself.
    #[arg(long)]
    pub(crate) force: bool,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// The token. Omit it to read the token from standard input, which keeps it out of shell
    /// history.
    pub(crate) token: Option<String>,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

/// `tollgate audit`.
///
/// The log spans every owner: entries are filtered by owner only when `--owner` (before or
/// after `audit`) or `TOLLGATE_OWNER` is given.
#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    /// Only entries about this token (its id, as `list` shows it).
    #[arg(long, value_name = "ID")]
    pub(crate) token: Option<String>,
    /// Only this action: apply, modify, enable, disable, regenerate, delete or refused.
    #[arg(long, value_parser = parse_action, value_name = "ACTION")]
    pub(crate) action: Option<AuditAction>,
    /// Only entries by this actor: `user@host` for the CLI on a store, an admin token's id,
    /// a self-service user's owner.
    #[arg(long, value_name = "ACTOR")]
    pub(crate) actor: Option<String>,
    /// Only entries at or after TIME: RFC 3339 (`2027-01-31T00:00:00Z`) or a duration back
    /// from now (`7d`, `12h`).
    #[arg(long, value_parser = parse_when, value_name = "TIME")]
    pub(crate) since: Option<When>,
    /// Only entries before TIME: RFC 3339 or a duration back from now.
    #[arg(long, value_parser = parse_when, value_name = "TIME")]
    pub(crate) until: Option<When>,
    /// Entries per page (1–1000, default 50); with --jsonl, at most N entries in all
    /// (default: every one).
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<usize>,
    /// Only entries about this owner's tokens (the same as `tollgate --owner NAME audit`).
    /// Without it, and without `TOLLGATE_OWNER`, every owner's; refused requests name no
    /// owner, so an owner leaves them out.
    #[arg(long, value_name = "NAME")]
    pub(crate) owner: Option<String>,
    /// Continue after a previous page (the cursor it printed).
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// Print every matching entry as JSON Lines (one entry a line, newest first), following
    /// the pages to the end: for shipping to a log system.
    #[arg(long)]
    pub(crate) jsonl: bool,
    #[command(flatten)]
    pub(crate) json: JsonArg,
}

/// A point in time on the command line: an instant, or a duration back from now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    At(Timestamp),
    Ago(SignedDuration),
}

impl When {
    /// The instant this names, counting back from `now`.
    pub(crate) fn resolve(self, now: Timestamp) -> Result<Timestamp, Failure> {
        match self {
            Self::At(at) => Ok(at),
            Self::Ago(duration) => now.checked_sub(duration).map_err(|_| {
                Failure::usage("invalid_audit_filter", "the time is too far in the past")
            }),
        }
    }
}

/// Parses `--since`/`--until`: RFC 3339 (`2027-01-31T00:00:00Z`), or a duration back from
/// now (`7d`, `12h`) in the syntax of [`parse_duration`].
pub(crate) fn parse_when(text: &str) -> Result<When, String> {
    if let Ok(at) = parse_timestamp(text) {
        return Ok(When::At(at));
    }
    parse_duration(text).map(When::Ago).map_err(|_| {
        format!(
            "{text:?} is neither an RFC 3339 time with an offset (2027-01-31T00:00:00Z) nor a duration back from now (7d, 12h, 90m)"
        )
    })
}

/// Parses `--action`.
pub(crate) fn parse_action(text: &str) -> Result<AuditAction, String> {
    text.trim().parse().map_err(|_| {
        format!(
            "{text:?} is no action; write apply, modify, enable, disable, regenerate, delete or refused"
        )
    })
}

/// Whether `--owner` came from the command line or `TOLLGATE_OWNER` rather than its default.
pub(crate) fn owner_given(matches: &clap::ArgMatches) -> bool {
    matches!(
        matches.value_source("owner"),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Checks what the value sources of the matches decide and clap cannot say: a server and a
/// store given together on the command line, `--token-file` without a server.
///
/// With a server set, commands go through it: `--db`, `--store` and `--prefix` on the command
/// line are refused, their environment variables ignored. `serve` runs on a store and ignores
/// `TOLLGATE_SERVER`, but refuses `--server`.
pub(crate) fn check_sources(matches: &clap::ArgMatches, cli: &Cli) -> Result<(), Failure> {
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let Some(server) = &cli.server else {
        if cli.token_file.is_some() {
            return Err(Failure::usage(
                "usage",
                "--token-file holds the admin token for --server URL (or TOLLGATE_SERVER); without a server, commands work on the store itself",
            ));
        }
        return Ok(());
    };
    let named = if given("server") {
        format!("--server {server}")
    } else {
        format!("TOLLGATE_SERVER ({server})")
    };
    if matches!(cli.command, Command::Serve(_)) {
        if given("server") {
            return Err(Failure::usage(
                "usage",
                "serve runs on a token store (--db or --store), not through another server; leave out --server",
            ));
        }
        return Ok(());
    }
    for option in ["db", "store", "prefix"] {
        if given(option) {
            return Err(Failure::usage(
                "usage",
                format!(
                    "--{option} works on a store, but {named} sends every command to a server, which keeps its own; use one or the other{}",
                    if given("server") {
                        ""
                    } else {
                        " (unset TOLLGATE_SERVER to work on the store)"
                    }
                ),
            ));
        }
    }
    Ok(())
}

/// Parses `30d`, `12h`, `1w 2d`, `90m`, `45s` (or ISO 8601 `P30D`) into a positive duration.
/// Days and weeks are 24 hours and 7 days; months and years are refused as ambiguous.
pub(crate) fn parse_duration(text: &str) -> Result<SignedDuration, String> {
    let span: Span = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration; write e.g. 30d, 12h, 90m or 1w"))?;
    let duration = span
        .to_duration(SpanRelativeTo::days_are_24_hours())
        .map_err(|_| {
            format!("{text:?}: use days, hours, minutes or seconds, not months or years")
        })?;
    if !duration.is_positive() {
        return Err(format!("{text:?}: the duration must be positive"));
    }
    Ok(duration)
}

/// Parses an RFC 3339 timestamp with an offset, e.g. `2027-01-31T00:00:00Z`.
pub(crate) fn parse_timestamp(text: &str) -> Result<Timestamp, String> {
    text.trim().parse().map_err(|_| {
        format!("{text:?} is not an RFC 3339 time with an offset, e.g. 2027-01-31T00:00:00Z")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30d"), Ok(SignedDuration::from_hours(720)));
        assert_eq!(parse_duration("1w"), Ok(SignedDuration::from_hours(168)));
        assert_eq!(parse_duration("10m"), Ok(SignedDuration::from_mins(10)));
        assert_eq!(parse_duration("1h 30m"), Ok(SignedDuration::from_mins(90)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-5m").is_err());
        assert!(parse_duration("1 month").is_err());
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn whens() {
        assert_eq!(
            parse_when("2027-01-31T00:00:00Z"),
            Ok(When::At("2027-01-31T00:00:00Z".parse().unwrap()))
        );
        assert_eq!(
            parse_when("7d"),
            Ok(When::Ago(SignedDuration::from_hours(168)))
        );
        for bad in ["yesterday", "2027-01-31", "-7d", "0s", ""] {
            assert!(parse_when(bad).is_err(), "{bad}");
        }
        let now: Timestamp = "2027-01-31T12:00:00Z".parse().unwrap();
        assert_eq!(
            parse_when("12h").unwrap().resolve(now).unwrap(),
            "2027-01-31T00:00:00Z".parse::<Timestamp>().unwrap()
        );
    }

    #[test]
    fn actions() {
        assert_eq!(parse_action("delete"), Ok(AuditAction::Delete));
        assert!(parse_action("remove").unwrap_err().contains("regenerate"));
        assert!(parse_action("Delete").is_err());
    }

    #[test]
    fn timestamps() {
        assert!(parse_timestamp("2027-01-31T00:00:00Z").is_ok());
        assert!(parse_timestamp("2027-01-31T00:00:00+08:00").is_ok());
        assert!(parse_timestamp("2027-01-31").is_err());
        assert!(parse_timestamp("tomorrow").is_err());
    }
}
