//! The `tollgate` command: manage API tokens in an embedded redb file.
//!
//! Exit codes: 0 success; 1 verification failed or token not found; 2 bad input, usage or a
//! conflict; 3 the token store failed or is unavailable (locked by another process, I/O
//! error), or standard output could not be written. A closed standard output (a pipe whose
//! reader has gone) ends a command quietly with 0, except where a secret was lost.

mod api;
mod args;
mod commands;
mod output;
mod serve;

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser as _;

use crate::args::Cli;

/// How a command ended, beyond success.
///
/// Exit codes come from [`tollgate::ErrorKind::exit_code`], the classification the
/// management API derives its HTTP statuses from, so the two surfaces never disagree.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A verification failed or a token was not found (exit 1).
    NotFound(String),
    /// Bad input (exit 2).
    Usage(String),
    /// The store or the system failed (exit 3).
    Store(String),
    /// An error from the core: the exit code follows its kind.
    Core(tollgate::Error),
    /// Whoever read standard output closed it (a closed pipe, as in `tollgate list | head`):
    /// stop quietly with exit 0, as `ripgrep` and `cat` do.
    OutputClosed,
}

impl Failure {
    fn code(&self) -> u8 {
        use tollgate::ErrorKind;
        match self {
            Self::NotFound(_) => ErrorKind::NotFound.exit_code(),
            Self::Usage(_) => ErrorKind::InvalidInput.exit_code(),
            Self::Store(_) => ErrorKind::Internal.exit_code(),
            Self::Core(err) => err.kind().exit_code(),
            Self::OutputClosed => 0,
        }
    }

    /// What to say on standard error; `None` to say nothing.
    fn message(&self) -> Option<String> {
        match self {
            Self::NotFound(m) | Self::Usage(m) | Self::Store(m) => Some(m.clone()),
            Self::Core(err) => Some(err.report()),
            Self::OutputClosed => None,
        }
    }

    /// Standard output could not be written: a closed pipe ends the command quietly,
    /// anything else (a full disk) is an error.
    pub(crate) fn output(err: &std::io::Error) -> Self {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            Self::OutputClosed
        } else {
            Self::Store(format!("cannot write to standard output: {err}"))
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

fn main() -> ExitCode {
    let cli = Cli::parse();
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
            complain(&format!("error: cannot start the async runtime: {err}"));
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if let Some(message) = failure.message() {
                complain(&format!("error: {message}"));
            }
            ExitCode::from(failure.code())
        }
    }
}
