//! One row of `doctor`: a check of what a run needs (credentials, the account listing, a spoke
//! role, one read or write permission in one account-region), and how it went.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    Pass,
    Fail,
    /// Not checked: nothing to check it on (no repository in the region), or not needed.
    Skip,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Pass => "pass",
            CheckStatus::Fail => "fail",
            CheckStatus::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What is checked: `credentials`, `accounts`, `spoke role`, `regions`, `read`, `in use`,
    /// `write`.
    pub check: String,
    pub account_id: Option<String>,
    pub region: Option<String>,
    /// The IAM action checked (`ecr:GetLifecyclePolicy`), or what stands for it.
    pub action: String,
    pub status: CheckStatus,
    /// What a passed or skipped check found (the caller's ARN, the number of accounts...).
    pub detail: Option<String>,
    /// The answer of a failed check.
    pub error: Option<String>,
    /// What to change so that the check passes.
    pub fix: Option<String>,
}

impl Check {
    pub fn new(check: &str, action: &str, status: CheckStatus) -> Check {
        Check {
            check: check.to_string(),
            account_id: None,
            region: None,
            action: action.to_string(),
            status,
            detail: None,
            error: None,
            fix: None,
        }
    }

    pub fn at(mut self, account_id: &str, region: Option<&str>) -> Check {
        self.account_id = Some(account_id.to_string());
        self.region = region.map(str::to_string);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Check {
        self.detail = Some(detail.into());
        self
    }

    pub fn failed(mut self, error: impl Into<String>, fix: impl Into<String>) -> Check {
        self.status = CheckStatus::Fail;
        self.error = Some(error.into());
        self.fix = Some(fix.into());
        self
    }
}
