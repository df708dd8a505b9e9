//! What the commands print and write.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tollgate::jiff::{SignedDuration, Timestamp};
use tollgate::{ActorKind, AuditEntry};
use tollgate_axum::management::TokenView;
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::Failure;

/// `value` as pretty JSON, with a final newline.
pub(crate) fn json_text(value: &impl Serialize) -> String {
    let mut json = serde_json::to_string_pretty(value).expect("output always serializes");
    json.push('\n');
    json
}

/// Writes `text` to standard output whole, then flushes: every byte of it reached the
/// pipe, file or terminal, or the error says why not.
///
/// Nothing in this crate uses `print!`: Rust ignores `SIGPIPE`, so `print!` panics when the
/// reader of a pipe has gone (`tollgate list | head -1`).
pub(crate) fn write_stdout(text: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()
}

/// Writes what a command reports (nothing that exists nowhere else) to standard output. A
/// closed pipe ends the command quietly; see [`Failure::output`].
pub(crate) fn emit(text: &str) -> Result<(), Failure> {
    write_stdout(text).map_err(|err| Failure::output(&err))
}

/// A time for people, to the minute, with its zone: `2026-11-27 10:00 UTC`; `-` for none.
fn time(at: Option<Timestamp>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M UTC").to_string(),
    )
}

/// A time for people, to the second: `2026-11-27 10:00:00 UTC`.
pub(crate) fn instant(at: Timestamp) -> String {
    at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// What tells a token apart at a glance without revealing it: `tg_…Qe1a`, its prefix (when
/// known) and its last characters; `-` for tokens issued before hints were kept.
fn hint(view: &TokenView, prefix: Option<&str>) -> String {
    match (view.hint.as_str(), prefix) {
        ("", _) => "-".to_owned(),
        (hint, Some(prefix)) => format!("{prefix}_…{hint}"),
        (hint, None) => format!("…{hint}"),
    }
}

/// Shortens `text` to at most `max` display columns, marking a cut with `…`.
fn fit(text: &str, max: usize) -> String {
    if text.width() <= max {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut width = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if width + w + 1 > max {
            break;
        }
        out.push(c);
        width += w;
    }
    out.push('…');
    out
}

fn pad(text: &str, columns: usize) -> String {
    let mut out = text.to_owned();
    out.extend(std::iter::repeat_n(
        ' ',
        columns.saturating_sub(text.width()),
    ));
    out
}

/// `text` safe to put on a terminal: control characters (an escape sequence in a user name
/// a store was given) become `�`.
fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// Lines up `rows` under `headers` in display columns, two spaces apart.
fn columns<const N: usize>(headers: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = headers.map(UnicodeWidthStr::width);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.width());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let text: Vec<String> = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| pad(cell, width))
            .collect();
        let _ = writeln!(out, "{}", text.join("  ").trim_end());
    };
    line(&headers);
    for row in rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// The first characters of an id, enough to tell entries apart at a glance.
fn short(id: &str) -> String {
    match id.get(..8) {
        Some(start) if id.len() > 8 => format!("{start}…"),
        _ => id.to_owned(),
    }
}

/// Who acted, for people: `alice@laptop`, `deploy-admin (token 1a2b3c4d…)`, `user alice`,
/// `application`, `anonymous`.
fn actor(entry: &AuditEntry) -> String {
    let actor = &entry.actor;
    match actor.kind {
        ActorKind::Local => actor.id.clone(),
        ActorKind::Token if actor.name.is_empty() => format!("token {}", short(&actor.id)),
        ActorKind::Token => format!("{} (token {})", fit(&actor.name, 30), short(&actor.id)),
        ActorKind::User => format!("user {}", actor.id),
        ActorKind::Application => "application".to_owned(),
        ActorKind::Anonymous => "anonymous".to_owned(),
        _ if actor.id.is_empty() => "-".to_owned(),
        _ => actor.id.clone(),
    }
}

/// What else an entry says: the fields changed, the grace period, why a request was
/// refused, where it came from.
fn audit_details(entry: &AuditEntry) -> String {
    let mut parts = Vec::new();
    if !entry.changes.is_empty() {
        parts.push(format!("changed {}", entry.changes.join(", ")));
    }
    match entry.grace_seconds {
        Some(seconds) if seconds > 0 => {
            parts.push(format!("grace {:#}", SignedDuration::from_secs(seconds)));
        }
        Some(_) => parts.push("no grace period".to_owned()),
        None => {}
    }
    if let Some(reason) = &entry.reason {
        parts.push(format!("reason: {reason}"));
    }
    if let Some(address) = &entry.client.address {
        parts.push(format!("from {address}"));
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join("; ")
    }
}

/// The audit log for people, as the entries come (newest first): time (UTC), action, the
/// token's short id and name, its owner, who acted, and the details.
pub(crate) fn audit_table(entries: &[AuditEntry]) -> String {
    let dash = || "-".to_owned();
    let rows: Vec<[String; 7]> = entries
        .iter()
        .map(|entry| {
            [
                instant(entry.at),
                entry.action.as_str().to_owned(),
                entry
                    .token_id
                    .map_or_else(dash, |id| short(&id.to_string())),
                entry
                    .token_name
                    .as_deref()
                    .map_or_else(dash, |n| fit(n, 40)),
                entry.owner.as_deref().map_or_else(dash, |o| fit(o, 20)),
                actor(entry),
                audit_details(entry),
            ]
            .map(|cell| clean(&cell))
        })
        .collect();
    columns(
        [
            "TIME", "ACTION", "TOKEN", "NAME", "OWNER", "ACTOR", "DETAILS",
        ],
        &rows,
    )
}

/// A table for people: names may be CJK (two columns a character), so widths are measured
/// in display columns. `prefix` is the store's token prefix, for the hints.
pub(crate) fn table(views: &[TokenView], prefix: Option<&str>) -> String {
    let headers = [
        "ID",
        "NAME",
        "TOKEN",
        "STATUS",
        "SCOPES",
        "EXPIRES",
        "LAST USED",
        "CREATED",
    ];
    let rows: Vec<[String; 8]> = views
        .iter()
        .map(|view| {
            [
                view.id.to_string(),
                fit(&view.name, 40),
                hint(view, prefix),
                view.status.as_str().to_owned(),
                if view.scopes.is_empty() {
                    "-".to_owned()
                } else {
                    fit(&view.scopes.join(","), 30)
                },
                time(view.expires_at),
                time(view.last_used_at),
                time(Some(view.created_at)),
            ]
        })
        .collect();
    columns(headers, &rows)
}

/// `key: value` lines for one token at `version`.
pub(crate) fn details(view: &TokenView, version: u64, prefix: Option<&str>) -> String {
    let mut out = String::new();
    let description = if view.description.is_empty() {
        "-"
    } else {
        &view.description
    };
    let scopes = if view.scopes.is_empty() {
        "-".to_owned()
    } else {
        view.scopes.join(" ")
    };
    let mut fields = vec![
        ("id", view.id.to_string()),
        ("name", view.name.clone()),
        ("owner", view.owner.clone()),
        ("description", description.to_owned()),
        ("scopes", scopes),
        ("token", hint(view, prefix)),
        ("status", view.status.as_str().to_owned()),
        ("expires", time(view.expires_at)),
    ];
    if let Some(until) = view.grace_until {
        fields.push(("old secret", format!("works until {}", instant(until))));
    }
    fields.extend([
        ("last used", time(view.last_used_at)),
        ("created", time(Some(view.created_at))),
        ("updated", time(Some(view.updated_at))),
        ("version", version.to_string()),
    ]);
    for (key, value) in fields {
        let _ = writeln!(out, "{key:>12}: {value}");
    }
    out
}

/// The file a token file is written to when no `-o` is given: the name the management API
/// offers it under ([`token_file_name`](tollgate_axum::management::token_file_name)), kept
/// to a plain file name in the working directory with at most 64 characters before
/// `.token.json`. Falls back to the id when the offered name is not a plain file name.
pub(crate) fn file_name(offered: &str, id: &str) -> PathBuf {
    const SUFFIX: &str = ".token.json";
    let plain = !offered.is_empty()
        && !offered.starts_with('.')
        && !offered.contains(['/', '\\', '\0'])
        && !offered.chars().any(char::is_control);
    let stem = match offered.strip_suffix(SUFFIX) {
        Some(stem) if plain && !stem.is_empty() => stem,
        _ => id,
    };
    let stem: String = stem.chars().take(64).collect();
    PathBuf::from(format!("{stem}{SUFFIX}"))
}

/// Where a token file goes, decided before anything irreversible happens so that a bad path
/// fails first.
#[derive(Debug)]
pub(crate) enum Destination {
    Stdout,
    File {
        path: PathBuf,
        temp: tempfile::NamedTempFile,
        force: bool,
    },
}

impl Destination {
    /// Checks that `path` can be written: its folder exists and is writable, and it does not
    /// exist unless `force`. Creates the temporary file the content will go through.
    pub(crate) fn prepare(path: &Path, force: bool) -> Result<Self, Failure> {
        if path == Path::new("-") {
            return Ok(Self::Stdout);
        }
        if !force && path.exists() {
            return Err(Failure::usage(
                "file_exists",
                format!(
                    "{} already exists; pass --force to overwrite it",
                    path.display()
                ),
            ));
        }
        if path.is_dir() {
            return Err(Failure::usage(
                "invalid_path",
                format!("{} is a directory", path.display()),
            ));
        }
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        // Created with mode 0600: the file may hold a secret.
        let temp = tempfile::Builder::new()
            .prefix(".tollgate-")
            .suffix(".tmp")
            .tempfile_in(folder)
            .map_err(|err| {
                Failure::usage(
                    "cannot_write",
                    format!("cannot write to {}: {err}", folder.display()),
                )
            })?;
        Ok(Self::File {
            path: path.to_path_buf(),
            temp,
            force,
        })
    }

    /// Writes `content` completely, then moves it into place: the file appears whole or not
    /// at all. Without `force` an existing file is never replaced, even one that appeared
    /// since [`prepare`](Self::prepare).
    pub(crate) fn write(self, content: &str) -> Result<Option<PathBuf>, Failure> {
        match self {
            Self::Stdout => {
                emit(content)?;
                Ok(None)
            }
            Self::File {
                path,
                mut temp,
                force,
            } => {
                let fail = |err: &dyn std::fmt::Display| {
                    Failure::usage(
                        "cannot_write",
                        format!("cannot write {}: {err}", path.display()),
                    )
                };
                temp.write_all(content.as_bytes()).map_err(|e| fail(&e))?;
                temp.as_file().sync_all().map_err(|e| fail(&e))?;
                let persisted = if force {
                    temp.persist(&path).map(drop)
                } else {
                    temp.persist_noclobber(&path).map(drop)
                };
                persisted.map_err(|e| {
                    if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                        Failure::usage(
                            "file_exists",
                            format!(
                                "{} already exists; pass --force to overwrite it",
                                path.display()
                            ),
                        )
                    } else {
                        fail(&e.error)
                    }
                })?;
                Ok(Some(path))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        let id = "00112233445566778899aabbccddeeff";
        let name = |offered| file_name(offered, id);
        assert_eq!(
            name("CI-deploy.token.json"),
            PathBuf::from("CI-deploy.token.json")
        );
        assert_eq!(
            name("生产-密钥.token.json"),
            PathBuf::from("生产-密钥.token.json")
        );
        let fallback = PathBuf::from(format!("{id}.token.json"));
        for unsafe_name in [
            "../etc/passwd.token.json",
            "a/b.token.json",
            "a\\b.token.json",
            ".hidden.token.json",
            "",
            ".token.json",
            "no-suffix",
            "bell\u{7}.token.json",
        ] {
            assert_eq!(name(unsafe_name), fallback, "{unsafe_name:?}");
        }
        let long = name(&format!("{}.token.json", "字".repeat(100)));
        assert_eq!(
            long,
            PathBuf::from(format!("{}.token.json", "字".repeat(64)))
        );
    }

    #[test]
    fn audit_rows_say_who_what_and_from_where() {
        use tollgate::{Actor, AuditAction, Client, Outcome, TokenId};
        let id: TokenId = "00112233445566778899aabbccddeeff".parse().unwrap();
        let entry = |actor, action| AuditEntry {
            id,
            at: "2026-11-27T10:00:00.123456Z".parse().unwrap(),
            actor,
            action,
            token_id: None,
            token_name: None,
            owner: None,
            outcome: Outcome::Success,
            changes: Vec::new(),
            grace_seconds: None,
            reason: None,
            client: Client::default(),
        };
        let mut regenerated = entry(Actor::token(id, "deploy admin"), AuditAction::Regenerate);
        regenerated.token_id = Some(id);
        regenerated.token_name = Some("CI".to_owned());
        regenerated.owner = Some("default".to_owned());
        regenerated.changes = vec!["name".to_owned(), "secret".to_owned()];
        regenerated.grace_seconds = Some(5400);
        regenerated.client.address = Some("10.0.0.7:5123".to_owned());
        let mut refused = entry(Actor::anonymous(), AuditAction::Refused);
        refused.outcome = Outcome::Refused;
        refused.reason = Some("invalid token".to_owned());
        let mut escaped = entry(Actor::local("eve\u{1b}[2J", "box"), AuditAction::Apply);
        escaped.grace_seconds = Some(0);
        let table = audit_table(&[regenerated, refused, escaped]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            "TIME                     ACTION      TOKEN      NAME  OWNER    ACTOR                           DETAILS"
        );
        assert_eq!(
            lines[1],
            "2026-11-27 10:00:00 UTC  regenerate  00112233…  CI    default  deploy admin (token 00112233…)  changed name, secret; grace 1h 30m; from 10.0.0.7:5123"
        );
        assert_eq!(
            lines[2],
            "2026-11-27 10:00:00 UTC  refused     -          -     -        anonymous                       reason: invalid token"
        );
        assert_eq!(
            lines[3],
            "2026-11-27 10:00:00 UTC  apply       -          -     -        eve\u{fffd}[2J@box                     no grace period"
        );
    }

    #[test]
    fn fit_counts_display_columns() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("生产环境密钥", 7), "生产环…");
        assert_eq!(fit("abcdefghij", 5), "abcd…");
    }
}
