//! Layered configuration for `convo serve`, `convo worker` and `convo api`: built-in defaults,
//! then a TOML file, then `CONVO_…` environment variables, then flags — each layer overriding
//! only what it sets.
//!
//! The layers are [`figment`] providers ([`Layers`]): the command's defaults, the TOML file,
//! then what the flags set. clap merges the last two itself (a flag wins over its `env`), so
//! the flags are `Option`s with no clap default and only those set reach the top layer. One
//! schema, [`FileConfig`], describes every layer, and a value of the wrong type is an error
//! naming its key and the layer it came from (the file's path). The file is `--config FILE`
//! (`CONVO_CONFIG`), or `convo.toml` in the working directory if it exists.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::Context;
use figment::{
    Figment,
    providers::{Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

/// The TOML file. Every key is optional; unknown keys are an error naming the key.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

/// `[webhooks]`. By default only public `https` destinations are allowed.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhooksSection {
    /// Also loopback, private and link-local addresses (receivers inside the operator's own
    /// network). Cloud metadata addresses stay refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_private_destinations: Option<bool>,
    /// Also plain `http://` URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_http: Option<bool>,
}

/// `[serve]`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeSection {
    /// Data directory (`./.convo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// HTTP API address (`127.0.0.1:8080`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    /// gRPC API address (`127.0.0.1:50051`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_addr: Option<SocketAddr>,
    /// Embedded Temporal port (`7233`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporal_port: Option<u16>,
    /// An external Temporal frontend to run on instead of the embedded devserver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temporal_address: Option<String>,
    /// Its namespace (`default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `[temporal]`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemporalSection {
    /// Frontend address, `host:port` or a URL (`127.0.0.1:7233`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Namespace (`default`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Task queue (`convo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_queue: Option<String>,
    /// API key (Temporal Cloud).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Use TLS (implied by any of the TLS files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<bool>,
    /// PEM file of the CA that signed the server's certificate.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_ca_cert: Option<PathBuf>,
    /// PEM client certificate, for mTLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_cert: Option<PathBuf>,
    /// PEM client key, for mTLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_key: Option<PathBuf>,
    /// Name to verify the server's certificate against.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_domain: Option<String>,
}

/// `[api]`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    /// HTTP API address (`0.0.0.0:8080` for `convo api`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_addr: Option<SocketAddr>,
    /// gRPC API address (`0.0.0.0:50051` for `convo api`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grpc_addr: Option<SocketAddr>,
    /// The token Meta's WhatsApp subscription handshake must present (none: it answers 403).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_verify_token: Option<String>,
    /// The Meta app secret for WhatsApp channels whose configuration has no `app_secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub whatsapp_app_secret: Option<String>,
    /// The externally visible base URL Twilio signs (`https://api.example.com`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub public_base_url: Option<String>,
    /// Requests a second for all the API keys of a workspace together (none: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_workspace: Option<std::num::NonZeroU32>,
    /// Requests a second for each API key (none: no limit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_limit_per_key: Option<std::num::NonZeroU32>,
}

/// The layers of one command's configuration, lowest first; [`Layers::extract`] merges them.
#[derive(Debug, Clone)]
pub struct Layers {
    figment: Figment,
}

impl Layers {
    /// The bottom layer: the command's built-in defaults.
    pub fn new(defaults: &FileConfig) -> Self {
        Self { figment: Figment::from(Serialized::defaults(defaults)) }
    }

    /// The TOML file: `path`, or `convo.toml` in the working directory when `path` is `None`
    /// and that file exists (an absent default file adds nothing).
    pub fn file(self, path: Option<&Path>) -> anyhow::Result<Self> {
        let path = match path {
            Some(p) => {
                anyhow::ensure!(p.is_file(), "reading {}: no such file", p.display());
                p.to_path_buf()
            }
            None => match PathBuf::from("convo.toml") {
                default if default.is_file() => default,
                _ => return Ok(self),
            },
        };
        Ok(Self { figment: self.figment.merge(Toml::file_exact(path)) })
    }

    /// A TOML document as the file layer (what [`Layers::file`] reads, from a string).
    pub fn toml(self, text: &str) -> Self {
        Self { figment: self.figment.merge(Toml::string(text)) }
    }

    /// A layer of set values over the ones below: what the flags (and their env) set.
    pub fn layer(self, values: &FileConfig) -> Self {
        Self { figment: self.figment.merge(Serialized::defaults(values)) }
    }

    /// Every key from the highest layer that sets it. A value of the wrong type, or a key the
    /// schema does not have, is an error naming the key and where it was set.
    pub fn extract(&self) -> anyhow::Result<FileConfig> {
        self.figment.extract().map_err(|errors| {
            let errors: Vec<String> = errors
                .into_iter()
                .map(|e| {
                    let key = e.path.join(".");
                    let from = match e.metadata.as_ref() {
                        Some(m) => match &m.source {
                            Some(source) => format!("{} ({source})", m.name),
                            None => m.name.to_string(),
                        },
                        None => "the configuration".to_owned(),
                    };
                    format!("`{key}`: {} (set in {from})", e.kind)
                })
                .collect();
            anyhow::anyhow!("invalid configuration: {}", errors.join("; "))
        })
    }
}

/// A layered value that the built-in defaults always set; `key` names it if not.
pub fn required<T>(value: Option<T>, key: &str) -> anyhow::Result<T> {
    value.with_context(|| format!("the configuration has no value for {key}"))
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

    fn serve(http: &str) -> FileConfig {
        let serve = ServeSection { http_addr: Some(http.parse().unwrap()), ..Default::default() };
        FileConfig { serve, ..Default::default() }
    }

    #[test]
    fn layers_override_in_order() {
        let defaults = FileConfig {
            serve: ServeSection {
                http_addr: Some("127.0.0.1:8080".parse().unwrap()),
                temporal_port: Some(7233),
                ..Default::default()
            },
            ..Default::default()
        };
        let file = "[serve]\nhttp_addr = \"127.0.0.1:9000\"\ntemporal_port = 7300\n";
        let c =
            Layers::new(&defaults).toml(file).layer(&serve("127.0.0.1:9100")).extract().unwrap();
        assert_eq!(c.serve.http_addr, Some("127.0.0.1:9100".parse().unwrap()), "a flag wins");
        assert_eq!(c.serve.temporal_port, Some(7300), "the file beats the default");
        let c = Layers::new(&defaults).layer(&FileConfig::default()).extract().unwrap();
        assert_eq!(c, defaults, "unset layers leave the defaults");
    }

    #[test]
    fn errors_name_the_key_and_where_it_was_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("convo.toml");
        std::fs::write(&path, "[serve]\nhttp_addr = \"not an address\"\n").unwrap();
        let err = Layers::new(&FileConfig::default()).file(Some(&path)).unwrap().extract();
        let err = format!("{:#}", err.unwrap_err());
        assert!(err.contains("serve.http_addr"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        let missing = Layers::new(&FileConfig::default()).file(Some(&dir.path().join("no.toml")));
        assert!(format!("{:#}", missing.unwrap_err()).contains("no.toml"));
        // No file named and no ./convo.toml (the package directory has none): the defaults.
        let defaults =
            FileConfig { database_url: Some("sqlite::memory:".into()), ..Default::default() };
        let c = Layers::new(&defaults).file(None).unwrap().extract().unwrap();
        assert_eq!(c, defaults);
    }

    #[test]
    fn file_rejects_unknown_keys_by_name() {
        let err = Layers::new(&FileConfig::default())
            .toml("[serve]\nhttp_adr = \"127.0.0.1:1\"")
            .extract()
            .unwrap_err();
        assert!(err.to_string().contains("http_adr"), "{err}");
    }

    fn file(text: &str) -> FileConfig {
        Layers::new(&FileConfig::default()).toml(text).extract().unwrap()
    }

    #[test]
    fn file_sections_parse() {
        let c = file(
            "database_url = \"postgres://x\"\n[serve]\ntemporal_port = 7300\n[temporal]\naddress = \"t:7233\"\nnamespace = \"prod\"\n",
        );
        assert_eq!(c.serve.temporal_port, Some(7300));
        assert_eq!(c.temporal.namespace.as_deref(), Some("prod"));
        assert_eq!(c.database_url.as_deref(), Some("postgres://x"));
    }

    #[test]
    fn api_section_takes_the_inbound_settings() {
        let c = file(
            "[api]\nwhatsapp_verify_token = \"vt\"\nwhatsapp_app_secret = \"as\"\npublic_base_url = \"https://api.example.com\"\n",
        );
        assert_eq!(c.api.whatsapp_verify_token.as_deref(), Some("vt"));
        assert_eq!(c.api.whatsapp_app_secret.as_deref(), Some("as"));
        assert_eq!(c.api.public_base_url.as_deref(), Some("https://api.example.com"));
        let err = Layers::new(&FileConfig::default()).toml("[api]\nverify_token = \"x\"").extract();
        assert!(err.unwrap_err().to_string().contains("verify_token"));
    }

    #[test]
    fn serve_can_name_an_external_temporal() {
        let c = file("[serve]\ntemporal_address = \"127.0.0.1:7233\"\nnamespace = \"dev\"\n");
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
