//! A minimal real SMTP server (RFC 5321 subset): `EHLO`/`HELO`, `MAIL`, `RCPT`, `DATA`, `RSET`,
//! `NOOP`, `QUIT`. Plaintext only; enough for lettre and any other client pointed at it.
//!
//! Faults answer at `RCPT TO` (the recipient is known there): `451` for transient ones, the
//! fault's own code for a refusal. The message is recorded at the end of `DATA`, de-duplicated
//! on the idempotency key encoded in its `Message-ID`.

use std::{sync::Arc, time::Duration};

use convo_domain::{Channel, window::Content};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinSet,
};

use super::{
    Fault,
    mime::parse,
    state::{Incoming, Outcome, Shared},
};
use crate::providers::email::key_from_message_id;

/// Longest command line accepted (RFC 5321 §4.5.3.1.4 allows 512; be lenient).
const MAX_LINE: usize = 4096;
/// Largest message accepted, announced in `EHLO` as `SIZE`.
const MAX_MESSAGE: usize = 10 * 1024 * 1024;
/// A client silent this long is dropped, so a stuck test cannot pin a task forever.
const IDLE: Duration = Duration::from_secs(60);

/// Accepts connections until `shutdown` turns true.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut sessions = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    sessions.spawn(async move {
                        if let Err(e) = Session::new(stream, shared).run().await {
                            tracing::debug!(error = %e, "sandbox smtp session ended");
                        }
                    });
                }
                Err(e) => tracing::warn!(error = %e, "sandbox smtp accept failed"),
            },
            _ = shutdown.wait_for(|stop| *stop) => break,
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    sessions.shutdown().await;
}

struct Session {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
    shared: Arc<Shared>,
    from: Option<String>,
    recipients: Vec<String>,
}

enum Next {
    Continue,
    Quit,
}

impl Session {
    fn new(stream: TcpStream, shared: Arc<Shared>) -> Self {
        // Replies are complete lines; sending each at once keeps the dialogue fast.
        let _ = stream.set_nodelay(true);
        let (read, writer) = stream.into_split();
        Self { reader: BufReader::new(read), writer, shared, from: None, recipients: Vec::new() }
    }

    /// Writes one reply in a single write: split writes interact with Nagle and delayed ACKs
    /// and cost tens of milliseconds per command.
    async fn reply(&mut self, text: &str) -> std::io::Result<()> {
        let mut line = String::with_capacity(text.len() + 2);
        line.push_str(text);
        line.push_str("\r\n");
        self.writer.write_all(line.as_bytes()).await?;
        self.writer.flush().await
    }

    /// One line without its line end; `None` at end of stream.
    async fn line(&mut self, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
        let mut buf = Vec::new();
        let read = tokio::time::timeout(IDLE, async {
            let mut total = 0;
            loop {
                let available = self.reader.fill_buf().await?;
                if available.is_empty() {
                    return Ok::<_, std::io::Error>(total);
                }
                let (chunk, done) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (&available[..=i], true),
                    None => (available, false),
                };
                let n = chunk.len();
                if buf.len() < limit {
                    buf.extend_from_slice(chunk);
                }
                self.reader.consume(n);
                total += n;
                if done {
                    return Ok(total);
                }
            }
        })
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "idle client"))??;
        if read == 0 {
            return Ok(None);
        }
        while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            buf.pop();
        }
        Ok(Some(buf))
    }

    async fn run(mut self) -> std::io::Result<()> {
        self.reply("220 convo-sandbox ESMTP ready").await?;
        while let Some(line) = self.line(MAX_LINE).await? {
            let line = String::from_utf8_lossy(&line).into_owned();
            if let Next::Quit = self.command(&line).await? {
                break;
            }
        }
        Ok(())
    }

    async fn command(&mut self, line: &str) -> std::io::Result<Next> {
        let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
        let arg = arg.trim();
        match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                self.reset();
                let text = format!(
                    "250-convo-sandbox greets {arg}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                     250-ENHANCEDSTATUSCODES\r\n250 SIZE {MAX_MESSAGE}"
                );
                self.reply(&text).await?;
            }
            "HELO" => {
                self.reset();
                self.reply("250 convo-sandbox").await?;
            }
            "MAIL" => match path_arg(arg, "FROM:") {
                Some(from) => {
                    self.reset();
                    self.from = Some(from);
                    self.reply("250 2.1.0 Ok").await?;
                }
                None => self.reply("501 5.5.4 Syntax: MAIL FROM:<address>").await?,
            },
            "RCPT" => {
                if self.from.is_none() {
                    self.reply("503 5.5.1 Error: need MAIL command").await?;
                    return Ok(Next::Continue);
                }
                let Some(to) = path_arg(arg, "TO:").filter(|t| !t.is_empty()) else {
                    self.reply("501 5.5.4 Syntax: RCPT TO:<address>").await?;
                    return Ok(Next::Continue);
                };
                match self.shared.take_fault(Channel::Email, &to) {
                    Some(fault) => self.reply(&fault_reply(&fault)).await?,
                    None => {
                        self.recipients.push(to);
                        self.reply("250 2.1.5 Ok").await?;
                    }
                }
            }
            "DATA" => {
                if self.recipients.is_empty() {
                    self.reply("503 5.5.1 Error: need RCPT command").await?;
                    return Ok(Next::Continue);
                }
                self.reply("354 End data with <CR><LF>.<CR><LF>").await?;
                return self.data().await;
            }
            "RSET" => {
                self.reset();
                self.reply("250 2.0.0 Ok").await?;
            }
            "NOOP" => self.reply("250 2.0.0 Ok").await?,
            "VRFY" => self.reply("252 2.0.0 Cannot VRFY user").await?,
            "QUIT" => {
                self.reply("221 2.0.0 Bye").await?;
                return Ok(Next::Quit);
            }
            "STARTTLS" => self.reply("454 4.7.0 TLS not available").await?,
            _ => self.reply("502 5.5.2 Error: command not recognized").await?,
        }
        Ok(Next::Continue)
    }

    fn reset(&mut self) {
        self.from = None;
        self.recipients.clear();
    }

    /// Reads the message up to the lone `.`, undoing dot-stuffing, then records it.
    async fn data(&mut self) -> std::io::Result<Next> {
        let mut raw = Vec::new();
        let mut too_big = false;
        loop {
            let Some(line) = self.line(MAX_MESSAGE).await? else {
                return Ok(Next::Quit);
            };
            if line == b"." {
                break;
            }
            let line = line.strip_prefix(b".").unwrap_or(&line);
            if raw.len() + line.len() > MAX_MESSAGE {
                too_big = true;
                continue;
            }
            // The CRLF before the final `.` belongs to the terminator, so lines are joined, not
            // each terminated.
            if !raw.is_empty() {
                raw.extend_from_slice(b"\r\n");
            }
            raw.extend_from_slice(line);
        }
        if too_big {
            self.reset();
            self.reply("552 5.3.4 Message size exceeds fixed limit").await?;
            return Ok(Next::Continue);
        }
        self.shared.pause().await;
        let reply = self.accept(&raw);
        self.reset();
        self.reply(&reply).await?;
        Ok(Next::Continue)
    }

    fn accept(&self, raw: &[u8]) -> String {
        let parsed = parse(raw);
        let message_id = parsed.header("Message-ID").map(str::to_owned);
        let subject = parsed.header("Subject").map(str::to_owned);
        let body = parsed.body.strip_suffix('\n').unwrap_or(&parsed.body).to_owned();
        let mut send = Incoming::new(
            Channel::Email,
            self.from.clone().unwrap_or_default(),
            self.recipients.join(", "),
            Content::Text { body, subject },
        );
        send.idempotency_key = message_id.as_deref().and_then(key_from_message_id);
        send.headers = parsed.headers;
        let fallback = message_id.clone();
        match self.shared.record(send, |seq| fallback.unwrap_or_else(|| format!("<{seq}@sandbox>")))
        {
            Outcome::Accepted { id, duplicate: false } => format!("250 2.0.0 Ok: queued as {id}"),
            Outcome::Accepted { id, duplicate: true } => {
                format!("250 2.0.0 Ok: duplicate of {id}, not queued again")
            }
            Outcome::Failed(fault) => fault_reply(&fault),
        }
    }
}

/// The address in `FROM:<addr> params` / `TO:<addr> params`.
fn path_arg(arg: &str, prefix: &str) -> Option<String> {
    let rest = arg.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix))?;
    let rest = arg[rest.len()..].trim_start();
    let inner = rest.strip_prefix('<')?;
    let end = inner.find('>')?;
    Some(inner[..end].to_owned())
}

/// The SMTP reply a fault becomes.
pub(crate) fn fault_reply(fault: &Fault) -> String {
    match fault {
        Fault::Unavailable => "451 4.3.0 Temporary failure, please try again later".to_owned(),
        Fault::RateLimited { .. } => "451 4.7.1 Rate limited, please try again later".to_owned(),
        Fault::Reject { code, message } => {
            let code = code.parse::<u16>().ok().filter(|c| (400..600).contains(c)).unwrap_or(550);
            let text = message.clone().unwrap_or_else(|| match code {
                550 => "5.1.1 Recipient address rejected: no such user".to_owned(),
                552 => "5.3.4 Message too big".to_owned(),
                535 => "5.7.8 Authentication credentials invalid".to_owned(),
                400..=499 => "4.0.0 Temporary failure".to_owned(),
                _ => "5.0.0 Rejected (sandbox fault)".to_owned(),
            });
            format!("{code} {text}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_arguments() {
        assert_eq!(path_arg("FROM:<a@b.c> BODY=8BITMIME", "FROM:"), Some("a@b.c".into()));
        assert_eq!(path_arg("from: <a@b.c>", "FROM:"), Some("a@b.c".into()));
        assert_eq!(path_arg("FROM:<>", "FROM:"), Some(String::new()));
        assert_eq!(path_arg("TO:a@b.c", "TO:"), None);
        assert_eq!(path_arg("X", "FROM:"), None);
    }

    #[test]
    fn fault_replies() {
        assert!(fault_reply(&Fault::Unavailable).starts_with("451 "));
        assert!(fault_reply(&Fault::RateLimited { retry_after_secs: 1 }).starts_with("451 "));
        assert_eq!(
            fault_reply(&Fault::reject("550")),
            "550 5.1.1 Recipient address rejected: no such user"
        );
        assert!(fault_reply(&Fault::reject("junk")).starts_with("550 "));
        assert!(fault_reply(&Fault::reject("452")).starts_with("452 4."));
    }
}
