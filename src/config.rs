//! Layered configuration for `convo serve`, `convo worker` and `convo api`: built-in defaults,
//! then a TOML file, then `CONVO_…` environment variables, then flags — each layer overriding
//! only what it sets.
//!
//! clap already merges the last two (a flag wins over its `env`); the flags are therefore all
//! `Option`s with no clap default, and [`pick`] fills what they leave unset from the file,
//! then from the defaults. The file is `--config FILE` (`CONVO_CONFIG`), or `convo.toml` in the
//! working directory if it exists.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::Context;
use serde::Deserialize;

/// The TOML file. Every key is optional; unknown keys are an error naming the key.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[serve]`: the all-in-one process.
    #[serde(default)]
    pub serve: ServeSection,
    /// `[temporal]`: how `worker` and `api` reach a Temporal cluster.
    #[serde(default)]
    pub temporal: TemporalSection,
    /// `[api]`: the HTTP and gRPC listeners of `convo api`.
    #[serde(default)]
    pub api: ApiSection,
    /// `[webhooks]`: which endpoint URLs `convo api` subscribes and `convo worker` delivers to.
    #[serde(default)]
    pub webhooks: WebhooksSection,
    /// The store (Postgres in production); `DATABASE_URL` overrides it.
    pub database_url: Option<String>,
}

/// `[webhooks]`. By default only public `https` destinations are allowed.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksSection {
    /// Also loopback, private and link-local addresses (receivers inside the operator's own
    /// network). Cloud metadata addresses stay refused.
    pub allow_private_destinations: Option<bool>,
    /// Also plain `http://` URLs.
    pub allow_http: Option<bool>,
}

/// `[serve]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// Data directory (`./.convo`).
    pub data_dir: Option<PathBuf>,
    /// HTTP API address (`127.0.0.1:8080`).
    pub http_addr: Option<SocketAddr>,
    /// gRPC API address (`127.0.0.1:50051`).
    pub grpc_addr: Option<SocketAddr>,
    /// Embedded Temporal port (`7233`).
    pub temporal_port: Option<u16>,
    /// An external Temporal frontend to run on instead of the embedded devserver.
    pub temporal_address: Option<String>,
    /// Its namespace (`default`).
    pub namespace: Option<String>,
}

/// `[temporal]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporalSection {
    /// Frontend address, `host:port` or a URL (`127.0.0.1:7233`).
    pub address: Option<String>,
    /// Namespace (`default`).
    pub namespace: Option<String>,
    /// Task queue (`convo`).
    pub task_queue: Option<String>,
    /// API key (Temporal Cloud).
    pub api_key: Option<String>,
    /// Use TLS (implied by any of the TLS files).
    pub tls: Option<bool>,
    /// PEM file of the CA that signed the server's certificate.
    pub tls_ca_cert: Option<PathBuf>,
    /// PEM client certificate, for mTLS.
    pub tls_client_cert: Option<PathBuf>,
    /// PEM client key, for mTLS.
    pub tls_client_key: Option<PathBuf>,
    /// Name to verify the server's certificate against.
    pub tls_domain: Option<String>,
}

/// `[api]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// HTTP API address (`0.0.0.0:8080` for `convo api`).
    pub http_addr: Option<SocketAddr>,
    /// gRPC API address (`0.0.0.0:50051` for `convo api`).
    pub grpc_addr: Option<SocketAddr>,
    /// The token Meta's WhatsApp subscription handshake must present (none: it answers 403).
    pub whatsapp_verify_token: Option<String>,
    /// The Meta app secret for WhatsApp channels whose configuration has no `app_secret`.
    pub whatsapp_app_secret: Option<String>,
    /// The externally visible base URL Twilio signs (`https://api.example.com`).
    pub public_base_url: Option<String>,
}

impl FileConfig {
    /// Reads `path`, or `convo.toml` in the working directory when `path` is `None` and the
    /// file exists; an absent default file is an empty configuration.
    pub fn load(path: Option<&Path>) -> anyhow::Result<FileConfig> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("convo.toml"), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => toml::from_str(&text).with_context(|| format!("in {}", path.display())),
            Err(e) if !required && e.kind() == std::io::ErrorKind::NotFound => {
                Ok(FileConfig::default())
            }
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

/// First set value wins: the flag (or its env var), then the file, then the default.
pub fn pick<T>(flag: Option<T>, file: Option<T>, default: T) -> T {
    flag.or(file).unwrap_or(default)
}

/// A Temporal address as a URL: `host:port` gets `http://` (or `https://` with TLS).
pub fn temporal_url(address: &str, tls: bool) -> anyhow::Result<url::Url> {
    let with_scheme = if address.contains("://") {
        address.to_owned()
    } else if tls {
        format!("https://{address}")
    } else {
        format!("http://{address}")
    };
    url::Url::parse(&with_scheme).with_context(|| format!("invalid Temporal address {address:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_override_in_order() {
        assert_eq!(pick(Some(1), Some(2), 3), 1);
        assert_eq!(pick(None, Some(2), 3), 2);
        assert_eq!(pick(None, None, 3), 3);
    }

    #[test]
    fn file_rejects_unknown_keys_by_name() {
        let err = toml::from_str::<FileConfig>("[serve]\nhttp_adr = \"127.0.0.1:1\"").unwrap_err();
        assert!(err.to_string().contains("http_adr"), "{err}");
    }

    #[test]
    fn file_sections_parse() {
        let c: FileConfig = toml::from_str(
            "database_url = \"postgres://x\"\n[serve]\ntemporal_port = 7300\n[temporal]\naddress = \"t:7233\"\nnamespace = \"prod\"\n",
        )
        .unwrap();
        assert_eq!(c.serve.temporal_port, Some(7300));
        assert_eq!(c.temporal.namespace.as_deref(), Some("prod"));
        assert_eq!(c.database_url.as_deref(), Some("postgres://x"));
    }

    #[test]
    fn api_section_takes_the_inbound_settings() {
        let c: FileConfig = toml::from_str(
            "[api]\nwhatsapp_verify_token = \"vt\"\nwhatsapp_app_secret = \"as\"\npublic_base_url = \"https://api.example.com\"\n",
        )
        .unwrap();
        assert_eq!(c.api.whatsapp_verify_token.as_deref(), Some("vt"));
        assert_eq!(c.api.whatsapp_app_secret.as_deref(), Some("as"));
        assert_eq!(c.api.public_base_url.as_deref(), Some("https://api.example.com"));
        let err = toml::from_str::<FileConfig>("[api]\nverify_token = \"x\"").unwrap_err();
        assert!(err.to_string().contains("verify_token"), "{err}");
    }

    #[test]
    fn serve_can_name_an_external_temporal() {
        let c: FileConfig =
            toml::from_str("[serve]\ntemporal_address = \"127.0.0.1:7233\"\nnamespace = \"dev\"\n")
                .unwrap();
        assert_eq!(c.serve.temporal_address.as_deref(), Some("127.0.0.1:7233"));
        assert_eq!(c.serve.namespace.as_deref(), Some("dev"));
    }

    #[test]
    fn addresses_get_a_scheme() {
        assert_eq!(temporal_url("h:7233", false).unwrap().as_str(), "http://h:7233/");
        assert_eq!(temporal_url("h:7233", true).unwrap().scheme(), "https");
        assert_eq!(temporal_url("http://h:1", true).unwrap().scheme(), "http");
    }
}
