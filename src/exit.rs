//! How a command ends: the exit status, one-to-one with the process exit code, and the
//! errors that stop a command before its end.

/// How a command ended; maps one-to-one to the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Nothing pending, or every change applied.
    Success = 0,
    /// The run finished but some accounts, regions or repositories failed.
    Failure = 1,
    /// Invalid input or usage; nothing was changed.
    Invalid = 2,
    /// plan/audit: changes pending or findings.
    Pending = 3,
}

/// Why a command could not run to the end.
#[derive(Debug)]
pub enum Fatal {
    /// Bad input: exit 2, before any AWS call.
    Input(anyhow::Error),
    /// The run could not proceed (no credentials, organization unreadable...): exit 1.
    Run(anyhow::Error),
}

impl Fatal {
    pub fn status(&self) -> ExitStatus {
        match self {
            Fatal::Input(_) => ExitStatus::Invalid,
            Fatal::Run(_) => ExitStatus::Failure,
        }
    }

    pub fn error(&self) -> &anyhow::Error {
        match self {
            Fatal::Input(e) | Fatal::Run(e) => e,
        }
    }
}
