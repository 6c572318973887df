//! One error type for every AWS call: what failed (`service:Operation`), how (a kind the
//! engine branches on, never a string match at the call site), and a readable text of the form
//! `<operation>: <code>: <message>`.

use aws_sdk_ecr::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

/// How a call failed, as far as the engine's decisions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The service said slow down (any AWS spelling of it).
    Throttling,
    /// 5xx, timeouts, broken connections: worth another attempt.
    Transient,
    /// The repository does not exist (any more): it went away during the run.
    RepositoryNotFound,
    /// The repository exists but has no lifecycle policy.
    PolicyNotFound,
    /// The caller may not do this.
    AccessDenied,
    /// No usable credentials: none found, an expired SSO session, a broken profile. The
    /// request never left.
    Credentials,
    /// Any other answer of the service, or a request that could not be built.
    Other,
    /// Not attempted: the run is stopping (Ctrl-C, SIGTERM).
    Interrupted,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{operation}: {detail}")]
pub struct AwsError {
    /// `service:Operation`, as the report's `api_calls` names it.
    pub operation: &'static str,
    pub kind: ErrorKind,
    /// The service's error code, when the service answered.
    pub code: Option<String>,
    /// `Code: message`, or what went wrong on the way to the service.
    pub detail: String,
}

const THROTTLING_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "BandwidthLimitExceeded",
];

const TRANSIENT_CODES: &[&str] = &[
    "ServerException",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

const ACCESS_DENIED_CODES: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "UnauthorizedOperation",
    "UnrecognizedClientException",
    "ExpiredToken",
    "ExpiredTokenException",
];

impl AwsError {
    /// The error of a call that was not made because the run is stopping.
    pub fn interrupted(operation: &'static str) -> AwsError {
        AwsError {
            operation,
            kind: ErrorKind::Interrupted,
            code: None,
            detail: "not started: interrupted".to_string(),
        }
    }

    /// Classify an SDK error. `endpoint` names where the request was going, for errors that
    /// never reached the service.
    pub fn from_sdk<E, R>(operation: &'static str, err: &SdkError<E, R>, endpoint: &str) -> AwsError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
        R: std::fmt::Debug + HttpStatus + 'static,
    {
        if let Some(problem) = credentials_problem(err) {
            return AwsError {
                operation,
                kind: ErrorKind::Credentials,
                code: None,
                detail: problem,
            };
        }
        match err {
            SdkError::ServiceError(ctx) => {
                let service = ctx.err();
                let code = service.code().map(str::to_string);
                let status = ctx.raw().http_status();
                let kind = classify(code.as_deref(), status);
                let detail = match (code.as_deref(), service.message()) {
                    (Some(c), Some(m)) if !m.is_empty() => format!("{c}: {m}"),
                    (Some(c), _) => c.to_string(),
                    (None, Some(m)) if !m.is_empty() => format!("HTTP {status}: {m}"),
                    (None, _) => format!("HTTP {status}"),
                };
                AwsError {
                    operation,
                    kind,
                    code,
                    detail,
                }
            }
            SdkError::TimeoutError(_) => AwsError {
                operation,
                kind: ErrorKind::Transient,
                code: None,
                detail: format!("timed out waiting for {endpoint}"),
            },
            SdkError::DispatchFailure(failure) => AwsError {
                operation,
                kind: ErrorKind::Transient,
                code: None,
                detail: format!(
                    "cannot reach {endpoint}: {}",
                    failure
                        .as_connector_error()
                        .map_or_else(|| "no connection".to_string(), |c| root_cause(c))
                ),
            },
            SdkError::ResponseError(_) => AwsError {
                operation,
                kind: ErrorKind::Transient,
                code: None,
                detail: format!(
                    "unreadable answer from {endpoint}: {}",
                    DisplayErrorContext(err)
                ),
            },
            // Construction failures are usually missing credentials or region: say it plainly.
            _ => AwsError {
                operation,
                kind: ErrorKind::Other,
                code: None,
                detail: DisplayErrorContext(err).to_string(),
            },
        }
    }

    pub fn is_retryable(&self) -> bool {
        matches!(self.kind, ErrorKind::Throttling | ErrorKind::Transient)
    }

    pub fn is_throttling(&self) -> bool {
        self.kind == ErrorKind::Throttling
    }
}

fn classify(code: Option<&str>, status: u16) -> ErrorKind {
    match code {
        Some(c) if THROTTLING_CODES.contains(&c) => ErrorKind::Throttling,
        Some("RepositoryNotFoundException") => ErrorKind::RepositoryNotFound,
        Some("LifecyclePolicyNotFoundException") => ErrorKind::PolicyNotFound,
        Some(c) if ACCESS_DENIED_CODES.contains(&c) => ErrorKind::AccessDenied,
        Some(c) if TRANSIENT_CODES.contains(&c) => ErrorKind::Transient,
        _ if status == 429 => ErrorKind::Throttling,
        _ if status >= 500 => ErrorKind::Transient,
        _ => ErrorKind::Other,
    }
}

/// The deepest cause of an error chain ("Connection refused (os error 111)"): the SDK's own
/// layers only repeat "dispatch failure", and their debug forms are no help to a person.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut last = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        let text = e.to_string();
        if !text.trim().is_empty() {
            last = text;
        }
        cause = e.source();
    }
    last
}

/// Where the SDK's default chain looks for credentials, in its order.
const CHAIN: &str = "the environment (AWS_ACCESS_KEY_ID), the profile in ~/.aws/config and \
~/.aws/credentials (AWS_PROFILE, SSO and role settings included), web identity \
(AWS_WEB_IDENTITY_TOKEN_FILE), the container endpoint (ECS, CodeBuild) and instance metadata";

/// What to do when no credentials are found.
const CREDENTIALS_TODO: &str = "run `aws configure sso` (or `aws configure`) once, pick a \
profile with AWS_PROFILE=NAME, or run `aws sso login` if its SSO session expired";

/// A readable account of why no credentials could be had, when that is why `err` failed:
/// one line saying what went wrong, where the chain looked and what to do.
fn credentials_problem(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(c) = e.downcast_ref::<CredentialsError>() {
            return Some(describe_credentials_error(c));
        }
        cause = e.source();
    }
    None
}

fn describe_credentials_error(
    err: &aws_credential_types::provider::error::CredentialsError,
) -> String {
    use aws_credential_types::provider::error::CredentialsError;
    let chain = chain_text(err);
    let profile = std::env::var("AWS_PROFILE")
        .ok()
        .filter(|p| !p.is_empty())
        .map(|p| format!(" --profile {p}"))
        .unwrap_or_default();
    let lower = chain.to_ascii_lowercase();
    if lower.contains("sso") && (lower.contains("expired") || lower.contains("token")) {
        return format!(
            "the AWS SSO session has expired or its token cannot be read: run `aws sso \
             login{profile}` and try again ({})",
            first_line(&root_cause(err))
        );
    }
    match err {
        CredentialsError::CredentialsNotLoaded(_) => {
            format!("no AWS credentials found; looked in {CHAIN}. To fix: {CREDENTIALS_TODO}")
        }
        CredentialsError::ProviderTimedOut(_) => format!(
            "no AWS credentials: the provider timed out (instance metadata or container \
             endpoint unreachable?); looked in {CHAIN}. To fix: {CREDENTIALS_TODO}"
        ),
        CredentialsError::InvalidConfiguration(_) => format!(
            "the AWS profile configuration is invalid: {}. Fix ~/.aws/config (or \
             AWS_CONFIG_FILE){profile}",
            first_line(&root_cause(err))
        ),
        // The spoke role's session (our own provider) could not be renewed.
        _ if chain.contains("sts:AssumeRole") => format!(
            "cannot renew the spoke role's session: {}",
            first_line(&root_cause(err))
        ),
        _ => format!(
            "no usable AWS credentials: {} (the chain looks in {CHAIN}). To fix: {CREDENTIALS_TODO}",
            first_line(&root_cause(err))
        ),
    }
}

fn first_line(text: &str) -> String {
    text.lines().next().unwrap_or_default().trim().to_string()
}

/// Every message of an error chain, for matching what the SDK's providers say.
fn chain_text(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cause = err.source();
    while let Some(e) = cause {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cause = e.source();
    }
    out
}

/// The HTTP status of a raw response, for errors without a recognised code.
pub trait HttpStatus {
    fn http_status(&self) -> u16;
}

impl HttpStatus for aws_smithy_runtime_api::client::orchestrator::HttpResponse {
    fn http_status(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified_by_kind() {
        assert_eq!(
            classify(Some("ThrottlingException"), 400),
            ErrorKind::Throttling
        );
        assert_eq!(
            classify(Some("TooManyRequestsException"), 400),
            ErrorKind::Throttling
        );
        assert_eq!(classify(Some("Throttling"), 400), ErrorKind::Throttling);
        assert_eq!(
            classify(Some("RepositoryNotFoundException"), 400),
            ErrorKind::RepositoryNotFound
        );
        assert_eq!(
            classify(Some("LifecyclePolicyNotFoundException"), 400),
            ErrorKind::PolicyNotFound
        );
        assert_eq!(classify(Some("AccessDenied"), 403), ErrorKind::AccessDenied);
        assert_eq!(classify(Some("ServerException"), 500), ErrorKind::Transient);
        assert_eq!(classify(None, 503), ErrorKind::Transient);
        assert_eq!(classify(None, 429), ErrorKind::Throttling);
        assert_eq!(
            classify(Some("InvalidParameterException"), 400),
            ErrorKind::Other
        );
    }

    #[test]
    fn text_reads_operation_code_message() {
        let e = AwsError {
            operation: "sts:AssumeRole",
            kind: ErrorKind::AccessDenied,
            code: Some("AccessDenied".into()),
            detail: "AccessDenied: not allowed".into(),
        };
        assert_eq!(e.to_string(), "sts:AssumeRole: AccessDenied: not allowed");
        assert!(!e.is_retryable());
        assert_eq!(
            AwsError::interrupted("ecr:PutLifecyclePolicy").to_string(),
            "ecr:PutLifecyclePolicy: not started: interrupted"
        );
    }

    #[test]
    fn root_cause_is_the_deepest_message() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "dispatch failure")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        assert_eq!(
            root_cause(&Outer(refused)),
            "Connection refused (os error 111)"
        );
        assert_eq!(root_cause(&std::io::Error::other("plain")), "plain");
    }
}
