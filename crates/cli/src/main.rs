//! The `tollgate` command: manage API tokens in an embedded redb file.
//!
//! Exit codes: 0 success; 1 verification failed or token not found; 2 bad input or usage;
//! 3 the token store failed or is unavailable (locked by another process, I/O error).

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
#[derive(Debug)]
pub(crate) enum Failure {
    /// A verification failed or a token was not found (exit 1).
    NotFound(String),
    /// Bad input (exit 2).
    Usage(String),
    /// The store failed (exit 3).
    Store(String),
}

impl Failure {
    fn code(&self) -> u8 {
        match self {
            Self::NotFound(_) => 1,
            Self::Usage(_) => 2,
            Self::Store(_) => 3,
        }
    }

    fn message(&self) -> &str {
        match self {
            Self::NotFound(m) | Self::Usage(m) | Self::Store(m) => m,
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
        let message = sentence(&err);
        match err {
            tollgate::Error::NotFound(_) => Self::NotFound(message),
            tollgate::Error::Unavailable(_) | tollgate::Error::Backend(_) => Self::Store(message),
            tollgate::Error::Random(_) => Self::Store(message),
            _ => Self::Usage(message),
        }
    }
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
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = std::io::stdout().flush();
            eprintln!("error: {}", failure.message());
            ExitCode::from(failure.code())
        }
    }
}
