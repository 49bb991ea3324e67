//! The one notification transport, for flows and (later) the upgrade: SMTP through
//! lettre when configured, otherwise `.eml` files in a directory (`DATA_DIR/outbox/`),
//! so a server without a mail relay still shows exactly what it would have sent.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;

/// How long an SMTP conversation may take before it counts as a transient failure.
const SMTP_TIMEOUT_SECS: u64 = 15;

/// How the SMTP connection is secured.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text (a relay on the same host or network).
    #[default]
    None,
    /// Upgrade with STARTTLS (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// The `[smtp]` section of the server's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender of every message.
    pub from: String,
}

fn default_port() -> u16 {
    25
}

/// A failed send, and whether trying again may help.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    pub message: String,
    pub transient: bool,
}

fn permanent(message: String) -> MailError {
    MailError {
        message,
        transient: false,
    }
}

enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>, PathBuf),
}

/// Sends messages.
pub struct Mailer {
    transport: Transport,
    from: Mailbox,
}

impl Mailer {
    pub fn smtp(cfg: &SmtpConfig) -> Result<Mailer, MailError> {
        let builder = match cfg.tls {
            TlsMode::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&cfg.host),
            TlsMode::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&cfg.host)
                .map_err(|e| permanent(format!("smtp: {e}")))?,
            TlsMode::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&cfg.host)
                .map_err(|e| permanent(format!("smtp: {e}")))?,
        };
        let mut builder = builder
            .port(cfg.port)
            .timeout(Some(Duration::from_secs(SMTP_TIMEOUT_SECS)));
        if let (Some(u), Some(p)) = (&cfg.username, &cfg.password) {
            builder = builder.credentials(Credentials::new(u.clone(), p.clone()));
        }
        Ok(Mailer {
            transport: Transport::Smtp(builder.build()),
            from: mailbox(&cfg.from)?,
        })
    }

    /// Writes each message as a `.eml` file in `dir`.
    pub fn files(dir: PathBuf, from: &str) -> Result<Mailer, MailError> {
        std::fs::create_dir_all(&dir).map_err(|e| permanent(format!("{}: {e}", dir.display())))?;
        Ok(Mailer {
            transport: Transport::Files(AsyncFileTransport::new(&dir), dir),
            from: mailbox(from)?,
        })
    }

    /// Where file messages go, if that is the transport.
    pub fn outbox_dir(&self) -> Option<&std::path::Path> {
        match &self.transport {
            Transport::Files(_, d) => Some(d),
            Transport::Smtp(_) => None,
        }
    }

    /// Sends a plain-text message; returns its Message-ID.
    pub async fn send(
        &self,
        to: &[String],
        subject: &str,
        body: &str,
    ) -> Result<String, MailError> {
        let id = format!("<{}@uplift>", uuid::Uuid::now_v7());
        let mut b = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .message_id(Some(id.clone()))
            .header(ContentType::TEXT_PLAIN);
        if to.is_empty() {
            return Err(permanent("a message needs a recipient".into()));
        }
        for t in to {
            b = b.to(mailbox(t)?);
        }
        let message = b
            .body(body.to_string())
            .map_err(|e| permanent(format!("the message cannot be built: {e}")))?;
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| MailError {
                transient: !e.is_permanent(),
                message: format!("smtp: {e}"),
            }),
            Transport::Files(t, _) => t.send(message).await.map(|_| ()).map_err(|e| MailError {
                transient: true,
                message: format!("writing the message: {e}"),
            }),
        }?;
        Ok(id)
    }
}

fn mailbox(s: &str) -> Result<Mailbox, MailError> {
    s.trim()
        .parse()
        .map_err(|e| permanent(format!("'{s}' is not an e-mail address: {e}")))
}
