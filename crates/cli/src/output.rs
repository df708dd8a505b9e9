//! What the commands print and write.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use tollgate::jiff::Timestamp;
use tollgate::{TokenInfo, TokenRecord};
use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

use crate::Failure;

/// A record for `--json`, with the plaintext when one was just issued.
#[derive(Serialize)]
pub(crate) struct JsonToken<'a> {
    #[serde(flatten)]
    pub(crate) info: TokenInfo,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) token: Option<&'a str>,
}

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

fn time(at: Option<Timestamp>) -> String {
    at.map_or_else(
        || "-".to_owned(),
        |t| t.strftime("%Y-%m-%d %H:%M").to_string(),
    )
}

/// `active`, `disabled` or `expired`.
pub(crate) fn status(record: &TokenRecord, now: Timestamp) -> &'static str {
    if !record.enabled {
        "disabled"
    } else if record.is_expired_at(now) {
        "expired"
    } else {
        "active"
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

/// A table for people: names may be CJK (two columns a character), so widths are measured
/// in display columns.
pub(crate) fn table(records: &[TokenRecord], now: Timestamp) -> String {
    let headers = [
        "ID",
        "NAME",
        "STATUS",
        "SCOPES",
        "EXPIRES",
        "LAST USED",
        "CREATED",
    ];
    let rows: Vec<[String; 7]> = records
        .iter()
        .map(|r| {
            [
                r.id.to_string(),
                fit(&r.name, 40),
                status(r, now).to_owned(),
                fit(&r.scopes.join(","), 30),
                time(r.expires_at),
                time(r.last_used_at),
                time(Some(r.created_at)),
            ]
        })
        .collect();
    let mut widths = headers.map(UnicodeWidthStr::width);
    for row in &rows {
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
    for row in &rows {
        line(&row.each_ref().map(String::as_str));
    }
    out
}

/// `key: value` lines for one record.
pub(crate) fn details(record: &TokenRecord, now: Timestamp) -> String {
    let mut out = String::new();
    let description = if record.description.is_empty() {
        "-"
    } else {
        &record.description
    };
    let scopes = if record.scopes.is_empty() {
        "-".to_owned()
    } else {
        record.scopes.join(" ")
    };
    let fields = [
        ("id", record.id.to_string()),
        ("name", record.name.clone()),
        ("owner", record.owner.clone()),
        ("description", description.to_owned()),
        ("scopes", scopes),
        ("status", status(record, now).to_owned()),
        ("expires", time(record.expires_at)),
        ("last used", time(record.last_used_at)),
        ("created", time(Some(record.created_at))),
        ("updated", time(Some(record.updated_at))),
        ("version", record.version.to_string()),
    ];
    for (key, value) in fields {
        let _ = writeln!(out, "{key:>12}: {value}");
    }
    out
}

/// A file name from a token name: letters and digits of any script, `-`, `_` and `.` are
/// kept, runs of anything else become one `-`; no leading dot, at most 64 characters. Falls
/// back to the id when nothing is left.
pub(crate) fn file_name(name: &str, id: &str) -> PathBuf {
    let mut stem = String::new();
    for c in name.chars() {
        if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
            stem.push(c);
        } else if !stem.ends_with('-') {
            stem.push('-');
        }
    }
    let stem: String = stem
        .trim_matches(|c| c == '-' || c == '.')
        .chars()
        .take(64)
        .collect();
    let stem = if stem.is_empty() { id } else { &stem };
    PathBuf::from(format!("{stem}.token.json"))
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
            return Err(Failure::Usage(format!(
                "{} already exists; pass --force to overwrite it",
                path.display()
            )));
        }
        if path.is_dir() {
            return Err(Failure::Usage(format!("{} is a directory", path.display())));
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
                Failure::Usage(format!("cannot write to {}: {err}", folder.display()))
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
                    Failure::Usage(format!("cannot write {}: {err}", path.display()))
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
                        Failure::Usage(format!(
                            "{} already exists; pass --force to overwrite it",
                            path.display()
                        ))
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
        assert_eq!(
            file_name("CI deploy", id),
            PathBuf::from("CI-deploy.token.json")
        );
        assert_eq!(
            file_name("../../etc/passwd", id),
            PathBuf::from("etc-passwd.token.json")
        );
        assert_eq!(
            file_name("a/b\\c:d*e", id),
            PathBuf::from("a-b-c-d-e.token.json")
        );
        assert_eq!(
            file_name("生产 密钥", id),
            PathBuf::from("生产-密钥.token.json")
        );
        assert_eq!(
            file_name("...", id),
            PathBuf::from(format!("{id}.token.json"))
        );
        assert_eq!(
            file_name("~~~", id),
            PathBuf::from(format!("{id}.token.json"))
        );
        let long = file_name(&"x".repeat(100), id);
        assert_eq!(long.to_str().unwrap().len(), 64 + ".token.json".len());
    }

    #[test]
    fn fit_counts_display_columns() {
        assert_eq!(fit("short", 10), "short");
        assert_eq!(fit("生产环境密钥", 7), "生产环…");
        assert_eq!(fit("abcdefghij", 5), "abcd…");
    }
}
