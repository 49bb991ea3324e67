//! A small HTTP client for the admin and data APIs, used by the client commands. It
//! sends and decodes the `uplift-api` types the server encodes.

use anyhow::{Context, Result, anyhow, bail};
use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uplift_api::ErrorBody;

/// Talks to one server with one token.
pub struct Client {
    server: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// The empty body of a POST that takes none.
pub const NO_BODY: Option<&()> = None;

impl Client {
    pub fn new(server: &str, token: Option<String>) -> Result<Client> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(300))
            .build()
            .context("building the HTTP client")?;
        Ok(Client {
            server: server.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// Sends a request and returns the answer's text (empty for none). A non-2xx
    /// answer becomes an error carrying the server's own message.
    async fn send<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<String> {
        let mut req = self.request(method.clone(), path);
        if let Some(b) = body {
            req = req.json(b);
        }
        self.finish(method, path, req).await
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let url = format!("{}{path}", self.server);
        let req = self.http.request(method, &url);
        match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        }
    }

    async fn finish(
        &self,
        method: Method,
        path: &str,
        req: reqwest::RequestBuilder,
    ) -> Result<String> {
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow!("cannot reach {}: {e}", self.server))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            let msg = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error.message)
                .unwrap_or(text);
            bail!("{method} {path} failed with {status}: {msg}");
        }
        Ok(text)
    }

    /// Sends a request and decodes the answer as `T`.
    pub async fn call<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        let text = self.send(method.clone(), path, body).await?;
        serde_json::from_str(&text).with_context(|| {
            format!("{method} {path} answered with something this client does not understand")
        })
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        self.call(Method::GET, path, NO_BODY).await
    }
    pub async fn post<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&B>,
    ) -> Result<T> {
        self.call(Method::POST, path, body).await
    }
    pub async fn put<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.call(Method::PUT, path, Some(body)).await
    }
    pub async fn patch<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T> {
        self.call(Method::PATCH, path, Some(body)).await
    }
    /// A PUT whose body is text (an upgrade plan's TOML).
    pub async fn put_text<T: DeserializeOwned>(&self, path: &str, text: String) -> Result<T> {
        let req = self
            .request(Method::PUT, path)
            .header(reqwest::header::CONTENT_TYPE, "application/toml")
            .body(text);
        let answer = self.finish(Method::PUT, path, req).await?;
        serde_json::from_str(&answer).with_context(|| {
            format!("PUT {path} answered with something this client does not understand")
        })
    }

    /// A GET whose answer is text to print as it is (a CSV report).
    pub async fn get_text(&self, path: &str) -> Result<String> {
        self.send(Method::GET, path, NO_BODY).await
    }

    /// A DELETE, whose answer has no body.
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send(Method::DELETE, path, NO_BODY).await.map(drop)
    }
}

/// Percent-encodes one path segment.
pub fn seg(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'@' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Reads a TOML or JSON document into JSON: by extension, or by trying JSON first.
pub fn read_document(path: &std::path::Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let is_toml = path.extension().is_some_and(|e| e == "toml");
    if is_toml {
        let v: toml::Value =
            toml::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))?;
        return serde_json::to_value(v).context("converting TOML");
    }
    serde_json::from_str(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// The `name` a definition file gives its app or flow.
pub fn definition_name(def: &Value, what: &str, path: &std::path::Path) -> Result<String> {
    match def.get("name") {
        Some(Value::String(n)) => Ok(n.clone()),
        _ => bail!("{}: the {what} has no 'name'", path.display()),
    }
}
