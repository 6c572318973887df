//! AWS plumbing: the SDK configuration (standard environment and config files only), retry and
//! timeout policy, per-operation call accounting, the call gate of each account-region
//! ([`call`]: caps, pacing, retries) and typed, readable errors ([`error`]).

pub mod call;
pub mod ecr;
pub mod error;
mod limits;
pub mod rate;

pub use call::{CallClass, Calls, Endpoints, RunLimits, Slot, Stop};
pub use error::{AwsError, ErrorKind};
pub use limits::{ExecutionLimits, RetryMode};

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_ecr::config::retry::RetryPartition;
use aws_sdk_ecr::config::{ConfigBag, Intercept, SharedCredentialsProvider};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};

/// Counts API operations (`service:Operation`) and attempts, across every client of a run.
#[derive(Debug, Clone, Default)]
pub struct ApiStats {
    calls: Arc<Mutex<BTreeMap<String, u64>>>,
    attempts: Arc<AtomicU64>,
    total_calls: Arc<AtomicU64>,
}

impl ApiStats {
    fn record_call(&self, service: &str, operation: &str) {
        self.total_calls.fetch_add(1, Ordering::Relaxed);
        let key = format!("{}:{operation}", service_prefix(service));
        *self
            .calls
            .lock()
            .expect("stats lock")
            .entry(key)
            .or_default() += 1;
    }

    /// An attempt that [`Calls`] made itself (a new SDK invocation) was a retry of an earlier
    /// call: move it from the calls to the retries.
    fn attempt_was_retry(&self, operation: &str) {
        self.total_calls.fetch_sub(1, Ordering::Relaxed);
        if let Some(n) = self.calls.lock().expect("stats lock").get_mut(operation) {
            *n = n.saturating_sub(1);
        }
    }

    /// Calls per operation, e.g. `ecr:GetLifecyclePolicy`. Retries are not counted here.
    pub fn calls(&self) -> BTreeMap<String, u64> {
        self.calls.lock().expect("stats lock").clone()
    }

    /// Attempts beyond the first, summed over every call (throttling, transient errors).
    pub fn retries(&self) -> u64 {
        self.attempts
            .load(Ordering::Relaxed)
            .saturating_sub(self.total_calls.load(Ordering::Relaxed))
    }
}

fn service_prefix(service: &str) -> String {
    match service {
        "ECR" => "ecr".to_string(),
        "STS" => "sts".to_string(),
        "Organizations" => "organizations".to_string(),
        "Resource Groups Tagging API" => "tagging".to_string(),
        other => other.to_ascii_lowercase(),
    }
}

#[derive(Debug)]
struct CallCounter(ApiStats);

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "EcrFleetCallCounter"
    }

    // Client-level interceptors see `read_before_execution` before the operation's metadata is
    // in the bag; serialization happens once per call, after it.
    fn read_before_serialization(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(meta) = cfg.load::<Metadata>() {
            self.0.record_call(meta.service(), meta.name());
        }
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.attempts.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// The SDK's HTTP client, with its connectors built once per run. Each client the SDK builds
/// asks its HTTP client to validate the base configuration, and the default client does so
/// by building a TLS connector (every trusted root parsed again): about a millisecond each,
/// for the two clients of every account-region and each account's role session, all at a
/// run's start, when the first calls wait for the CPU. Connectors for requests are still
/// built, and cached per timeout settings, by the client inside.
#[derive(Debug)]
struct BuiltOnce(SharedHttpClient);

impl HttpClient for BuiltOnce {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    fn validate_base_client_config(
        &self,
        _components: &RuntimeComponentsBuilder,
        _cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    fn validate_final_config(
        &self,
        components: &RuntimeComponents,
        cfg: &ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.validate_final_config(components, cfg)
    }

    fn connector_metadata(
        &self,
    ) -> Option<aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// `base`, whose HTTP client builds connectors for requests only (see [`BuiltOnce`]).
fn with_connectors_built_once(base: SdkConfig) -> SdkConfig {
    match base.http_client() {
        Some(client) => base
            .into_builder()
            .http_client(SharedHttpClient::new(BuiltOnce(client)))
            .build(),
        None => base,
    }
}

/// Shared AWS context of a run: the base SDK configuration (caller's credentials) and the stats.
#[derive(Debug, Clone)]
pub struct Aws {
    pub base: SdkConfig,
    pub stats: ApiStats,
    retry_mode: RetryMode,
    max_attempts: u32,
}

/// One account-region: its clients and its call gate.
#[derive(Debug, Clone)]
pub struct Target {
    pub account_id: String,
    pub region: String,
    pub partition: String,
    pub ecr: aws_sdk_ecr::Client,
    pub tagging: aws_sdk_resourcegroupstagging::Client,
    pub calls: Calls,
}

impl Target {
    pub fn repository_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:ecr:{}:{}:repository/{name}",
            self.partition, self.region, self.account_id
        )
    }
}

/// The SDK's standard retries as the run configures them for STS and Organizations.
pub fn sdk_standard_retry(max_attempts: u32) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(20))
}

impl Aws {
    /// Load the SDK's default chain (environment, profile, SSO, IMDS, `AWS_ENDPOINT_URL`...) with
    /// our retry and timeout policy.
    pub async fn load(execution: &ExecutionLimits) -> Aws {
        // STS and Organizations (a handful of calls) keep the SDK's standard retries; ECR and
        // tagging calls get theirs from `Calls` unless the SDK's adaptive mode is asked for.
        let retry = sdk_standard_retry(execution.max_attempts);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .operation_attempt_timeout(Duration::from_secs(60))
            .build();
        let base = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(retry)
            .timeout_config(timeouts)
            .load()
            .await;
        Aws {
            base: with_connectors_built_once(base),
            stats: ApiStats::default(),
            retry_mode: execution.retry_mode,
            max_attempts: execution.max_attempts,
        }
    }

    /// Retries of an account-region's ECR and tagging clients.
    fn target_retry(&self) -> RetryConfig {
        match self.retry_mode {
            RetryMode::Standard => RetryConfig::disabled(),
            // Client-side rate limiting inside the SDK, per account-region partition.
            RetryMode::Adaptive => RetryConfig::adaptive()
                .with_max_attempts(self.max_attempts)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(20)),
        }
    }

    /// Where a service's requests go in a region, for errors that never reach it.
    pub fn endpoint(&self, host_prefix: &str, region: &str) -> String {
        if let Some(url) = self.base.endpoint_url() {
            return url.to_string();
        }
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        format!("https://{host_prefix}.{region}.{suffix}")
    }

    /// The clients and call gate of one account-region; `credentials` is `None` for the
    /// caller's own account.
    pub fn target(
        &self,
        account_id: &str,
        region: &str,
        partition: &str,
        credentials: Option<&SharedCredentialsProvider>,
        limits: &RunLimits,
    ) -> Target {
        let mut tagging = aws_sdk_resourcegroupstagging::config::Builder::from(&self.base)
            .region(Region::new(region.to_string()))
            .retry_config(self.target_retry())
            .retry_partition(RetryPartition::new(format!(
                "tagging-{account_id}-{region}"
            )))
            .interceptor(CallCounter(self.stats.clone()));
        if let Some(c) = credentials {
            tagging = tagging.credentials_provider(c.clone());
        }
        Target {
            account_id: account_id.to_string(),
            region: region.to_string(),
            partition: partition.to_string(),
            ecr: self.ecr(account_id, region, credentials),
            tagging: aws_sdk_resourcegroupstagging::Client::from_conf(tagging.build()),
            calls: Calls::new(
                limits,
                Endpoints {
                    ecr: self.endpoint("api.ecr", region),
                    tagging: self.endpoint("tagging", region),
                    target: format!("{account_id}/{region}"),
                },
            ),
        }
    }

    /// The region the SDK resolved from the environment or profile, if any.
    pub fn default_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }

    pub fn sts(&self, region: Option<&str>) -> aws_sdk_sts::Client {
        let mut b = aws_sdk_sts::config::Builder::from(&self.base)
            .interceptor(CallCounter(self.stats.clone()));
        if let Some(r) = region {
            b = b.region(Region::new(r.to_string()));
        } else if self.base.region().is_none() {
            b = b.region(Region::from_static("us-east-1"));
        }
        aws_sdk_sts::Client::from_conf(b.build())
    }

    pub fn organizations(&self, region: &str) -> aws_sdk_organizations::Client {
        let conf = aws_sdk_organizations::config::Builder::from(&self.base)
            .region(Region::new(region.to_string()))
            .interceptor(CallCounter(self.stats.clone()))
            .build();
        aws_sdk_organizations::Client::from_conf(conf)
    }

    fn ecr(
        &self,
        account_id: &str,
        region: &str,
        credentials: Option<&SharedCredentialsProvider>,
    ) -> aws_sdk_ecr::Client {
        let mut b = aws_sdk_ecr::config::Builder::from(&self.base)
            .region(Region::new(region.to_string()))
            // ECR throttles per account and region: give each its own adaptive rate limiter and
            // retry budget (the SDK's default partition is per region, shared by all accounts).
            .retry_partition(RetryPartition::new(format!("ecr-{account_id}-{region}")))
            .retry_config(self.target_retry())
            .interceptor(CallCounter(self.stats.clone()));
        if let Some(c) = credentials {
            b = b.credentials_provider(c.clone());
        }
        aws_sdk_ecr::Client::from_conf(b.build())
    }
}

/// Clients of the in-use sources and of region discovery, one per account-region like ECR's,
/// each with its own retry partition.
impl Aws {
    fn partition(service: &str, account_id: &str, region: &str) -> String {
        format!("{service}-{account_id}-{region}")
    }

    pub fn ecs(
        &self,
        account_id: &str,
        region: &str,
        credentials: Option<&SharedCredentialsProvider>,
    ) -> aws_sdk_ecs::Client {
        let mut b = aws_sdk_ecs::config::Builder::from(&self.base)
            .region(Region::new(region.to_string()))
            .retry_partition(RetryPartition::new(Aws::partition(
                "ecs", account_id, region,
            )))
            .interceptor(CallCounter(self.stats.clone()));
        if let Some(c) = credentials {
            b = b.credentials_provider(c.clone());
        }
        aws_sdk_ecs::Client::from_conf(b.build())
    }

    pub fn lambda(
        &self,
        account_id: &str,
        region: &str,
        credentials: Option<&SharedCredentialsProvider>,
    ) -> aws_sdk_lambda::Client {
        let mut b = aws_sdk_lambda::config::Builder::from(&self.base)
            .region(Region::new(region.to_string()))
            .retry_partition(RetryPartition::new(Aws::partition(
                "lambda", account_id, region,
            )))
            .interceptor(CallCounter(self.stats.clone()));
        if let Some(c) = credentials {
            b = b.credentials_provider(c.clone());
        }
        aws_sdk_lambda::Client::from_conf(b.build())
    }

    pub fn inspector2(
        &self,
        account_id: &str,
        region: &str,
        credentials: Option<&SharedCredentialsProvider>,
    ) -> aws_sdk_inspector2::Client {
        let mut b = aws_sdk_inspector2::config::Builder::from(&self.base)
            .region(Region::new(region.to_string()))
            .retry_partition(RetryPartition::new(Aws::partition(
                "inspector2",
                account_id,
                region,
            )))
            .interceptor(CallCounter(self.stats.clone()));
        if let Some(c) = credentials {
            b = b.credentials_provider(c.clone());
        }
        aws_sdk_inspector2::Client::from_conf(b.build())
    }

    /// The Account Management API is global; `region` picks the endpoint (the partition's
    /// home region works everywhere).
    pub fn account(
        &self,
        region: &str,
        credentials: Option<&SharedCredentialsProvider>,
    ) -> aws_sdk_account::Client {
        let mut b = aws_sdk_account::config::Builder::from(&self.base)
            .region(Region::new(region.to_string()))
            .interceptor(CallCounter(self.stats.clone()));
        if let Some(c) = credentials {
            b = b.credentials_provider(c.clone());
        }
        aws_sdk_account::Client::from_conf(b.build())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sdk_ecr::error::SdkError;
    use aws_smithy_runtime_api::client::http::{HttpConnector, HttpConnectorFuture};
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use std::sync::atomic::AtomicUsize;

    /// An HTTP client that counts what the SDK asks of it; its connector refuses every request.
    #[derive(Debug, Default, Clone)]
    struct Counting {
        validations: Arc<AtomicUsize>,
        connectors: Arc<AtomicUsize>,
    }

    #[derive(Debug)]
    struct Refusing;

    impl HttpConnector for Refusing {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            HttpConnectorFuture::ready(Err(ConnectorError::other("refused".into(), None)))
        }
    }

    impl HttpClient for Counting {
        fn http_connector(
            &self,
            _settings: &HttpConnectorSettings,
            _components: &RuntimeComponents,
        ) -> SharedHttpConnector {
            self.connectors.fetch_add(1, Ordering::SeqCst);
            SharedHttpConnector::new(Refusing)
        }

        fn validate_base_client_config(
            &self,
            _components: &RuntimeComponentsBuilder,
            _cfg: &ConfigBag,
        ) -> Result<(), BoxError> {
            self.validations.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn base(http: &Counting) -> SdkConfig {
        SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::from_static("us-east-1"))
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "AKIDTEST", "secret", None, None, "test",
            )))
            .retry_config(RetryConfig::disabled())
            .http_client(http.clone())
            .build()
    }

    #[tokio::test]
    async fn clients_are_built_without_a_connector_and_their_calls_still_get_one() {
        // The SDK's default: every client built asks its HTTP client to validate.
        let plain = Counting::default();
        let base_plain = base(&plain);
        for _ in 0..3 {
            aws_sdk_ecr::Client::new(&base_plain);
        }
        assert_eq!(plain.validations.load(Ordering::SeqCst), 3);

        let http = Counting::default();
        let base = with_connectors_built_once(base(&http));
        let clients: Vec<_> = (0..3).map(|_| aws_sdk_ecr::Client::new(&base)).collect();
        assert_eq!(http.validations.load(Ordering::SeqCst), 0);
        // Requests still go through the client inside, which builds their connector.
        let error = clients[0].describe_repositories().send().await.unwrap_err();
        assert!(matches!(error, SdkError::DispatchFailure(_)), "{error:?}");
        assert_eq!(http.connectors.load(Ordering::SeqCst), 1);
    }
}
