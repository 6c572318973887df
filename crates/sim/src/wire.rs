//! The AWS side of a request and an answer: which `service:Operation` a request is, who
//! signed it (the SigV4 credential scope), and answers shaped as the services shape them
//! (awsJson 1.1 for ECR, Organizations and tagging; awsQuery XML for STS; rest-JSON for
//! Lambda, Account and Inspector) so the SDK parses them.

use serde_json::{json, Value};

use crate::http::{form_field, Request, Response};

/// A request's operation: the service is the signing name of its credential scope, the
/// name comes from `X-Amz-Target` (awsJson), the `Action` field (awsQuery) or the path
/// (rest-JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub service: String,
    pub name: String,
}

impl Operation {
    pub fn of(request: &Request) -> Operation {
        let target = request.header("x-amz-target");
        let service = Scope::of(request)
            .map(|scope| scope.service)
            .or_else(|| {
                let target = target?;
                Some(
                    if target.starts_with("AmazonEC2ContainerRegistry") {
                        "ecr"
                    } else if target.starts_with("AWSOrganizations") {
                        "organizations"
                    } else {
                        "unknown"
                    }
                    .to_string(),
                )
            })
            .unwrap_or_else(|| "unknown".into());
        let name = match target {
            Some(target) => target.rsplit('.').next().unwrap_or(target).to_string(),
            None => form_field(&request.body, "Action")
                .or_else(|| form_field(request.query().as_bytes(), "Action"))
                .or_else(|| {
                    rest_operation(&service, &request.method, request.path()).map(str::to_string)
                })
                .unwrap_or_else(|| format!("{} {}", request.method, request.path())),
        };
        Operation { service, name }
    }

    /// `service:Operation`, as the report's `api_calls` names it.
    pub fn key(&self) -> String {
        format!("{}:{}", self.service, self.name)
    }
}

/// Whether a name (`Op` or `service:Op`) designates the operation `key` (`service:Op`).
pub fn op_matches(name: &str, key: &str) -> bool {
    name == key || key.split_once(':').is_some_and(|(_, op)| op == name)
}

/// Operation names of the rest-JSON services ecr-fleet calls (no `X-Amz-Target` there).
fn rest_operation(service: &str, method: &str, path: &str) -> Option<&'static str> {
    match (service, method, path) {
        ("account", "POST", "/listRegions") => Some("ListRegions"),
        ("inspector2", "POST", "/coverage/list") => Some("ListCoverage"),
        ("lambda", "GET", p) if p.trim_end_matches('/') == LAMBDA_FUNCTIONS => {
            Some("ListFunctions")
        }
        ("lambda", "GET", p) if p.starts_with(LAMBDA_FUNCTIONS) => Some("GetFunction"),
        _ => None,
    }
}

/// Path of Lambda's function resources.
pub const LAMBDA_FUNCTIONS: &str = "/2015-03-31/functions";

/// The SigV4 credential scope of a request: `KEY/date/region/service/aws4_request`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    pub access_key: String,
    pub region: String,
    pub service: String,
}

impl Scope {
    pub fn of(request: &Request) -> Option<Scope> {
        let credential = request
            .header("authorization")?
            .split("Credential=")
            .nth(1)?
            .split([',', ' '])
            .next()?;
        let mut parts = credential.split('/');
        let access_key = parts.next()?.to_string();
        let _date = parts.next()?;
        let region = parts.next()?.to_string();
        let service = parts.next()?.to_string();
        Some(Scope {
            access_key,
            region,
            service,
        })
    }
}

/// A fresh request id, in the UUID shape AWS uses.
pub fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(1);
    format!(
        "00000000-0000-4000-8000-{:012x}",
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn answer(status: u16, content_type: &str, extra: Option<(&str, &str)>, body: Vec<u8>) -> Response {
    let mut headers = vec![
        ("content-type".to_string(), content_type.to_string()),
        ("x-amzn-requestid".to_string(), request_id()),
    ];
    if let Some((name, value)) = extra {
        headers.push((name.to_string(), value.to_string()));
    }
    Response {
        status,
        headers,
        body,
    }
}

const AWS_JSON: &str = "application/x-amz-json-1.1";
const REST_JSON: &str = "application/json";

fn bytes(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).expect("json")
}

/// A successful awsJson 1.1 answer.
pub fn json_ok(body: &Value) -> Response {
    answer(200, AWS_JSON, None, bytes(body))
}

/// An awsJson 1.1 error (`__type` and `message`, as the SDK reads them).
pub fn json_error(status: u16, code: &str, message: &str) -> Response {
    let body = json!({"__type": code, "message": message});
    answer(
        status,
        AWS_JSON,
        Some(("x-amzn-errortype", code)),
        bytes(&body),
    )
}

/// A successful rest-JSON answer.
pub fn rest_ok(body: &Value) -> Response {
    answer(200, REST_JSON, None, bytes(body))
}

/// A rest-JSON error (the error type in `x-amzn-errortype`).
pub fn rest_error(status: u16, code: &str, message: &str) -> Response {
    let body = json!({"Type": "User", "message": message});
    answer(
        status,
        REST_JSON,
        Some(("x-amzn-errortype", code)),
        bytes(&body),
    )
}

/// An awsQuery (STS) error.
pub fn query_error(status: u16, kind: &str, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
         <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  \
         <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        xml_escape(message),
        request_id()
    );
    answer(status, "text/xml", None, body.into_bytes())
}

/// A successful awsQuery (STS) answer of `action` around `result` (XML).
pub fn sts_ok(action: &str, result: &str) -> Response {
    let body = format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <{action}Result>{result}</{action}Result>\
         <ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
        request_id()
    );
    answer(200, "text/xml", None, body.into_bytes())
}

/// The service's own throttling error for `op`.
pub fn throttling_error(op: &Operation) -> Response {
    match op.service.as_str() {
        "sts" => query_error(400, "Sender", "Throttling", "Rate exceeded"),
        "organizations" => json_error(400, "TooManyRequestsException", "Rate exceeded"),
        // The tagging API's own name for it.
        "tagging" => json_error(400, "ThrottledException", "Rate exceeded"),
        "lambda" | "account" | "inspector2" => {
            rest_error(429, "TooManyRequestsException", "Rate exceeded")
        }
        _ => json_error(400, "ThrottlingException", "Rate exceeded"),
    }
}

pub fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The text of the first `<tag>...</tag>` element of an XML document.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..end].trim().to_string())
}

/// The JSON body of a request; an empty or unreadable body is `{}`.
pub fn json_body(request: &Request) -> Value {
    serde_json::from_slice(&request.body).unwrap_or_else(|_| json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], target: &str, body: &str) -> Request {
        Request {
            method: "POST".into(),
            target: target.into(),
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: body.as_bytes().to_vec(),
        }
    }

    const AUTH: &str = "AWS4-HMAC-SHA256 Credential=AKID/20260101/eu-west-1/ecr/aws4_request, \
                        SignedHeaders=host, Signature=0";

    #[test]
    fn operations_and_scopes() {
        let ecr = request(
            &[
                ("Authorization", AUTH),
                (
                    "X-Amz-Target",
                    "AmazonEC2ContainerRegistry_V20150921.PutLifecyclePolicy",
                ),
            ],
            "/",
            "{}",
        );
        assert_eq!(Operation::of(&ecr).key(), "ecr:PutLifecyclePolicy");
        let scope = Scope::of(&ecr).unwrap();
        assert_eq!(
            (scope.access_key.as_str(), scope.region.as_str()),
            ("AKID", "eu-west-1")
        );
        let sts = request(
            &[("authorization", &AUTH.replace("/ecr/", "/sts/"))],
            "/",
            "Action=AssumeRole&Version=2011-06-15",
        );
        assert_eq!(Operation::of(&sts).key(), "sts:AssumeRole");
        let mut lambda = request(
            &[("authorization", &AUTH.replace("/ecr/", "/lambda/"))],
            "/2015-03-31/functions/f1",
            "",
        );
        lambda.method = "GET".into();
        assert_eq!(Operation::of(&lambda).key(), "lambda:GetFunction");
        lambda.target = "/2015-03-31/functions/?MaxItems=50".into();
        assert_eq!(Operation::of(&lambda).key(), "lambda:ListFunctions");
        assert!(op_matches("PutLifecyclePolicy", "ecr:PutLifecyclePolicy"));
        assert!(!op_matches("GetLifecyclePolicy", "ecr:PutLifecyclePolicy"));
    }
}
