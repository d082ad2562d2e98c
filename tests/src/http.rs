//! Calling the api worker's HTTP endpoints as a client would: real requests with a bearer
//! token, answers read into status, the headers tests look at, and the body (JSON when it
//! is JSON).

use std::net::SocketAddr;

use serde_json::Value;

/// An answer: status, headers of interest, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub content_length: Option<String>,
    pub etag: Option<String>,
    pub location: Option<String>,
    /// The body as JSON (`Null` when it is not JSON).
    pub json: Value,
    pub bytes: Vec<u8>,
}

/// A client of the API at one address.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    http: reqwest::Client,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            http: reqwest::Client::new(),
        }
    }

    /// `GET path_and_query` with `token`.
    pub async fn get(&self, token: Option<&str>, path_and_query: &str) -> anyhow::Result<Answer> {
        let mut request = self
            .http
            .get(format!("http://{}{path_and_query}", self.addr));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request).await
    }

    /// `POST path` of the JSON `body` with `token` and extra `headers`.
    pub async fn post(
        &self,
        token: Option<&str>,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> anyhow::Result<Answer> {
        let mut request = self
            .http
            .post(format!("http://{}{path}", self.addr))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        answer(request).await
    }
}

async fn answer(request: reqwest::RequestBuilder) -> anyhow::Result<Answer> {
    let response = request.send().await?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (content_type, content_length, etag, location) = (
        header("content-type").unwrap_or_default(),
        header("content-length"),
        header("etag"),
        header("location"),
    );
    let status = response.status().as_u16();
    let bytes = response.bytes().await?.to_vec();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        content_type,
        content_length,
        etag,
        location,
        json,
        bytes,
    })
}

/// Asserts a problem+json answer of `status`.
pub fn assert_problem(answer: &Answer, status: u16, what: &str) {
    assert_eq!(answer.status, status, "{what}: {answer:?}");
    assert_eq!(
        answer.content_type, "application/problem+json",
        "{what}: {answer:?}"
    );
    assert_eq!(answer.json["status"], status, "{what}: {answer:?}");
}
