//! The one HTTP/1.1 layer of the synthetic server and the test fault proxy, on hyper: a
//! loopback server that hands each request, read whole, to an async handler on a tokio
//! runtime of its own thread (so it serves sync and async callers alike), and a one-shot
//! client that forwards a request upstream and reads the whole answer.
//!
//! Requests and answers are plain owned values ([`Request`], [`Response`]): the handlers
//! look at headers and bodies as the AWS protocols put them, and never stream.

use std::convert::Infallible;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// One request, read whole.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Request target as sent: path and query.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// The query string, without `?` (empty when there is none).
    pub fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, q)| q)
    }

    /// A request of the same caller to another service (moto reads the caller and region
    /// from the credential scope and does not check signatures): the Authorization
    /// header's service replaced, the given target, content type and body.
    pub fn derived(
        &self,
        service: &str,
        target: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Request {
        const REPLACED: [&str; 4] = [
            "x-amz-target",
            "content-type",
            "content-length",
            "content-encoding",
        ];
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .filter(|(name, _)| !REPLACED.iter().any(|h| name.eq_ignore_ascii_case(h)))
            .map(|(name, value)| {
                if name.eq_ignore_ascii_case("authorization") {
                    let mut parts: Vec<String> = value.split('/').map(str::to_string).collect();
                    // Credential=KEY/date/region/service/aws4_request
                    if parts.len() > 3 {
                        parts[3] = service.to_string();
                    }
                    (name.clone(), parts.join("/"))
                } else {
                    (name.clone(), value.clone())
                }
            })
            .collect();
        headers.push(("content-type".into(), content_type.into()));
        if let Some(target) = target {
            headers.push(("x-amz-target".into(), target.into()));
        }
        Request {
            method: "POST".into(),
            target: "/".into(),
            headers,
            body,
        }
    }

    async fn from_hyper(request: hyper::Request<Incoming>) -> Result<Request, hyper::Error> {
        let (parts, body) = request.into_parts();
        let body = body.collect().await?.to_bytes().to_vec();
        Ok(Request {
            method: parts.method.as_str().to_string(),
            target: parts
                .uri
                .path_and_query()
                .map_or_else(|| "/".to_string(), |p| p.as_str().to_string()),
            headers: header_pairs(&parts.headers),
            body,
        })
    }
}

/// One answer, whole. Content length and connection handling are hyper's.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        find_header(&self.headers, name)
    }

    fn into_hyper(self) -> hyper::Response<Full<Bytes>> {
        let mut answer = hyper::Response::new(Full::new(Bytes::from(self.body)));
        *answer.status_mut() = hyper::StatusCode::from_u16(self.status)
            .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
        copy_headers(&self.headers, answer.headers_mut());
        answer
    }
}

fn find_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn header_pairs(headers: &hyper::HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Copies end-to-end headers; framing and connection headers are hyper's to set.
fn copy_headers(from: &[(String, String)], to: &mut hyper::HeaderMap) {
    for (name, value) in from {
        if is_hop_by_hop(name) {
            continue;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            to.append(name, value);
        }
    }
}

fn is_hop_by_hop(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "host",
        "expect",
    ]
    .iter()
    .any(|h| name.eq_ignore_ascii_case(h))
}

/// The decoded value of a field of an `application/x-www-form-urlencoded` text.
pub fn form_field(body: &[u8], field: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(name, _)| name == field)
        .map(|(_, value)| value.into_owned())
}

/// A running loopback server; stops when dropped (or with [`HttpServer::stop`]).
pub struct HttpServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl HttpServer {
    /// Binds a free port of 127.0.0.1 and serves every request with `handler` on a tokio
    /// runtime of a thread named `thread_name` (at most 15 bytes, the kernel's limit).
    /// Connections are kept alive; each request is answered when its handler finishes.
    pub fn start<H, F>(thread_name: &str, handler: H) -> HttpServer
    where
        H: Fn(Request) -> F + Send + Sync + 'static,
        F: Future<Output = Response> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .unwrap_or_else(|e| panic!("{thread_name}: cannot bind a loopback port: {e}"));
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("listener address");
        let (shutdown, stop) = oneshot::channel();
        let handler = Arc::new(handler);
        let thread = std::thread::Builder::new()
            .name(thread_name.into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        _ = accept_loop(listener, handler) => {}
                        _ = stop => {}
                    }
                });
                // Dropping the runtime cancels every connection still open.
            })
            .expect("server thread");
        HttpServer {
            addr,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Base URL, e.g. `http://127.0.0.1:40001`, for `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving and waits for the thread to end.
    pub fn stop(mut self) {
        self.shut_down();
    }

    fn shut_down(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

async fn accept_loop<H, F>(listener: TcpListener, handler: Arc<H>)
where
    H: Fn(Request) -> F + Send + Sync + 'static,
    F: Future<Output = Response> + Send + 'static,
{
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            // Out of file descriptors, say: wait a little rather than spin.
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let handler = handler.clone();
            async move {
                let answer = match Request::from_hyper(request).await {
                    Ok(request) => handler(request).await,
                    Err(e) => Response {
                        status: 400,
                        headers: vec![("content-type".into(), "text/plain".into())],
                        body: format!("cannot read the request: {e}").into_bytes(),
                    },
                };
                Ok::<_, Infallible>(answer.into_hyper())
            }
        });
        tokio::spawn(async move {
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// Sends the request to `upstream` (`host:port`) on a fresh connection and reads the whole
/// answer; a failure to reach it is an HTTP 502 answer saying why.
pub async fn forward(request: &Request, upstream: &str) -> Response {
    match try_forward(request, upstream).await {
        Ok(response) => response,
        Err(e) => Response {
            status: 502,
            headers: vec![("content-type".into(), "text/plain".into())],
            body: format!("upstream {upstream} failed: {e}").into_bytes(),
        },
    }
}

async fn try_forward(
    request: &Request,
    upstream: &str,
) -> Result<Response, Box<dyn std::error::Error + Send + Sync>> {
    let stream = TcpStream::connect(upstream).await?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let mut outgoing = hyper::Request::builder()
        .method(request.method.as_str())
        .uri(request.target.as_str())
        .body(Full::new(Bytes::from(request.body.clone())))?;
    copy_headers(&request.headers, outgoing.headers_mut());
    outgoing
        .headers_mut()
        .insert(hyper::header::HOST, HeaderValue::from_str(upstream)?);
    let answer = sender.send_request(outgoing).await?;
    let (parts, body) = answer.into_parts();
    Ok(Response {
        status: parts.status.as_u16(),
        headers: header_pairs(&parts.headers),
        body: body.collect().await?.to_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_are_decoded() {
        let body = b"Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fx&Name=a+b";
        assert_eq!(form_field(body, "Action").as_deref(), Some("AssumeRole"));
        assert_eq!(
            form_field(body, "RoleArn").as_deref(),
            Some("arn:aws:iam::1:role/x")
        );
        assert_eq!(form_field(body, "Name").as_deref(), Some("a b"));
        assert_eq!(form_field(body, "Other"), None);
    }

    #[test]
    fn a_server_answers_and_forward_reads_the_answer() {
        let server = HttpServer::start("http-test", |request: Request| async move {
            Response {
                status: 201,
                headers: vec![("x-echo".into(), request.target.clone())],
                body: request.body,
            }
        });
        let upstream = server.addr().to_string();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = runtime.block_on(forward(
            &Request {
                method: "POST".into(),
                target: "/a?b=c".into(),
                headers: vec![("content-type".into(), "text/plain".into())],
                body: b"hello".to_vec(),
            },
            &upstream,
        ));
        assert_eq!(answer.status, 201);
        assert_eq!(answer.header("x-echo"), Some("/a?b=c"));
        assert_eq!(answer.body, b"hello");
        server.stop();
        let refused = runtime.block_on(forward(
            &Request {
                method: "GET".into(),
                target: "/".into(),
                headers: Vec::new(),
                body: Vec::new(),
            },
            &upstream,
        ));
        assert_eq!(refused.status, 502);
    }
}
