//! The `tollgate` command: manage API tokens in an embedded redb file, in PostgreSQL, or
//! through the management API of a running `tollgate serve`.
//!
//! Exit codes: 0 success; 1 verification failed or token not found; 2 bad input, usage or a
//! conflict; 3 the token store or the server failed or is unavailable (locked by another
//! process, I/O error, unreachable), or standard output could not be written. A closed
//! standard output (a pipe whose reader has gone) ends a command quietly with 0, except where
//! a secret was lost.

mod api;
mod args;
mod backend;
mod commands;
mod output;
mod remote;
mod serve;

use std::borrow::Cow;
use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _};
use tollgate::ErrorKind;
use tollgate_axum::management::{ErrorBody, ErrorDetail};

use crate::args::Cli;

/// How a command ended, beyond success.
///
/// Exit codes come from [`tollgate::ErrorKind::exit_code`], the classification the
/// management API derives its HTTP statuses from, so the two surfaces never disagree; an
/// answer of the management API maps back to the kind its status came from.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A failure the CLI itself found, with the code `--json` reports and its kind.
    Said {
        kind: ErrorKind,
        code: Cow<'static, str>,
        message: String,
    },
    /// A verification failed (exit 1, code `invalid_token`).
    Rejected(String),
    /// An error from the core: the exit code and the code follow from it.
    Core(tollgate::Error),
    /// Whoever read standard output closed it (a closed pipe, as in `tollgate list | head`):
    /// stop quietly with exit 0, as `ripgrep` and `cat` do.
    OutputClosed,
}

impl Failure {
    /// Bad input or usage (exit 2).
    pub(crate) fn usage(code: &'static str, message: impl Into<String>) -> Self {
        Self::Said {
            kind: ErrorKind::InvalidInput,
            code: Cow::Borrowed(code),
            message: message.into(),
        }
    }

    /// The store, the server or the system failed (exit 3).
    pub(crate) fn system(code: &'static str, message: impl Into<String>) -> Self {
        Self::Said {
            kind: ErrorKind::Internal,
            code: Cow::Borrowed(code),
            message: message.into(),
        }
    }

    fn code(&self) -> u8 {
        match self {
            Self::Said { kind, .. } => kind.exit_code(),
            Self::Rejected(_) => ErrorKind::NotFound.exit_code(),
            Self::Core(err) => err.kind().exit_code(),
            Self::OutputClosed => 0,
        }
    }

    /// What to say on standard error: the error body `--json` prints, or `None` to say
    /// nothing.
    fn body(&self) -> Option<ErrorBody> {
        let (code, message) = match self {
            Self::Said { code, message, .. } => (code.clone().into_owned(), message.clone()),
            Self::Rejected(message) => ("invalid_token".to_owned(), message.clone()),
            Self::Core(err) => (err.code().to_owned(), err.report()),
            Self::OutputClosed => return None,
        };
        Some(ErrorBody {
            error: ErrorDetail { code, message },
        })
    }

    /// Standard output could not be written: a closed pipe ends the command quietly,
    /// anything else (a full disk) is an error.
    pub(crate) fn output(err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            Self::OutputClosed
        } else {
            Self::system(
                "output_error",
                format!("cannot write to standard output: {err}"),
            )
        }
    }
}

/// One sentence: the error and its causes, joined.
pub(crate) fn sentence(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // Some errors repeat their source's message; say it once.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl From<tollgate::Error> for Failure {
    fn from(err: tollgate::Error) -> Self {
        Self::Core(err)
    }
}

/// Writes a line to standard error. Never panics: when standard error is gone too, there
/// is nobody left to tell.
pub(crate) fn complain(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

/// Reports `failure` on standard error: `error: <message>`, or with `--json` its error body
/// on one line.
fn report(failure: &Failure, json: bool) {
    let Some(body) = failure.body() else {
        return;
    };
    if json {
        let line = serde_json::to_string(&body).expect("an error body always serializes");
        complain(&line);
    } else {
        complain(&format!("error: {}", body.error.message));
    }
}

/// Parses the command line. A usage error is clap's own text, or with `--json` anywhere on
/// the line an error body; either way exit 2.
fn parse() -> Result<Cli, ExitCode> {
    let error = match Cli::command().try_get_matches() {
        Ok(matches) => match Cli::from_arg_matches(&matches) {
            Ok(mut cli) => {
                cli.owner_given = args::owner_given(&matches);
                return match args::check_sources(&matches, &cli) {
                    Ok(()) => Ok(cli),
                    Err(failure) => {
                        report(&failure, cli.json());
                        Err(ExitCode::from(failure.code()))
                    }
                };
            }
            Err(error) => error,
        },
        Err(error) => error,
    };
    use clap::error::ErrorKind as Clap;
    let wants_json = std::env::args_os()
        .skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json");
    if wants_json && !matches!(error.kind(), Clap::DisplayHelp | Clap::DisplayVersion) {
        let text = error.to_string();
        let first = text.lines().next().unwrap_or_default();
        let message = first.strip_prefix("error: ").unwrap_or(first);
        report(&Failure::usage("usage", message), true);
        return Err(ExitCode::from(2));
    }
    // Help and version go to standard output; a failure to write them is no panic.
    let _ = error.print();
    Err(ExitCode::from(u8::try_from(error.exit_code()).unwrap_or(2)))
}

fn main() -> ExitCode {
    let cli = match parse() {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let json = cli.json();
    // The server wants every core; a one-shot command needs one thread.
    let runtime = if matches!(cli.command, args::Command::Serve(_)) {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(err) => {
            let failure = Failure::system(
                "internal_error",
                format!("cannot start the async runtime: {err}"),
            );
            report(&failure, json);
            return ExitCode::from(failure.code());
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            report(&failure, json);
            ExitCode::from(failure.code())
        }
    }
}
