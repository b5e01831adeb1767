//! Connecting to a Temporal frontend: the address, namespace, credentials and TLS, and the
//! gRPC channel every call goes through.

use std::time::Duration;

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes};
use futures::future::BoxFuture;
use http::{HeaderMap, uri::PathAndQuery};
use temporalio_client::{
    Client, ClientOptions, Connection, ConnectionOptions, Url,
    callback_based::{CallbackBasedGrpcService, GrpcRequest, GrpcSuccessResponse},
    errors::{ClientConnectError, ClientNewError},
};
use tonic::{
    Status,
    codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder},
    metadata::MetadataMap,
    transport::Channel,
};

/// Where a client connects and as whom.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Frontend address, e.g. `http://127.0.0.1:7233`.
    pub address: Url,
    /// Namespace every call names.
    pub namespace: String,
    /// Client identity; `None` lets the SDK use `pid@hostname`.
    pub identity: Option<String>,
    /// API key for Temporal Cloud or a server that requires one (sent as a bearer token).
    pub api_key: Option<String>,
    /// TLS to the frontend; `None` is plaintext (the devserver, a local cluster).
    pub tls: Option<TlsSettings>,
}

impl ClientSettings {
    /// Plaintext, anonymous, in namespace `default`.
    pub fn new(address: Url) -> Self {
        Self { address, namespace: "default".to_owned(), identity: None, api_key: None, tls: None }
    }
}

/// TLS to the Temporal frontend, as PEM bytes.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// CA that signed the server's certificate; the system roots when `None`.
    pub server_root_ca_cert: Option<Vec<u8>>,
    /// Name to verify the server's certificate against; the address's host when `None`.
    pub domain: Option<String>,
    /// Client certificate and key, for mTLS.
    pub client_cert: Option<(Vec<u8>, Vec<u8>)>,
}

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The frontend could not be reached (or refused `GetSystemInfo`).
    #[error("cannot connect to Temporal at {address}")]
    Connect {
        /// The address tried.
        address: String,
        /// Why (boxed: the SDK error is large).
        #[source]
        source: Box<ClientConnectError>,
    },
    /// The Temporal address or TLS settings do not make a gRPC endpoint.
    #[error("cannot set up a channel to Temporal at {address}")]
    Channel {
        /// The address given.
        address: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The client options were rejected.
    #[error("invalid Temporal client options")]
    Client(#[source] ClientNewError),
}

/// A lazily connecting channel to `address`, with TLS when `tls` is set, keep-alives, and a
/// 10 s connect timeout.
fn channel(address: &Url, tls: Option<&TlsSettings>) -> Result<Channel, tonic::transport::Error> {
    let mut endpoint = tonic::transport::Endpoint::from_shared(address.to_string())?
        .connect_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(15));
    if let Some(tls) = tls {
        let mut config = tonic::transport::ClientTlsConfig::new();
        config = match &tls.server_root_ca_cert {
            Some(ca) => config.ca_certificate(tonic::transport::Certificate::from_pem(ca)),
            None => config.with_native_roots(),
        };
        if let Some(domain) = &tls.domain {
            config = config.domain_name(domain.clone());
        }
        if let Some((cert, key)) = &tls.client_cert {
            config = config.identity(tonic::transport::Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(config)?;
    }
    Ok(endpoint.connect_lazy())
}

/// A client of `settings.address` / `settings.namespace`, its calls counted in the SDK's client
/// metrics (`temporal_request`, ...).
pub async fn connect(settings: &ClientSettings) -> Result<Client, ConnectError> {
    connect_through(settings, passthrough).await
}

/// Every call forwarded on `channel` as it is.
fn passthrough(channel: Channel) -> CallbackBasedGrpcService {
    CallbackBasedGrpcService {
        callback: Arc::new(move |request: GrpcRequest| {
            let channel = channel.clone();
            Box::pin(async move {
                let path = format!("/{}/{}", request.service, request.rpc);
                let (headers, body) =
                    unary(&channel, &path, request.headers, request.proto).await?;
                Ok(GrpcSuccessResponse { headers, proto: body.to_vec() })
            }) as BoxFuture<'static, _>
        }),
    }
}

/// A client whose every call goes through the service `wrap` makes of the channel to
/// `settings.address` (TLS as `settings.tls` asks, keep-alives, a 10 s connect timeout) (a worker's, which repairs the workflow tasks it polls).
pub async fn connect_through(
    settings: &ClientSettings,
    wrap: impl FnOnce(Channel) -> CallbackBasedGrpcService,
) -> Result<Client, ConnectError> {
    let channel = channel(&settings.address, settings.tls.as_ref()).map_err(|source| {
        ConnectError::Channel { address: settings.address.to_string(), source }
    })?;
    let service = wrap(channel);
    let mut options = ConnectionOptions::new(settings.address.clone())
        .service_override(service)
        .dns_load_balancing(None)
        .build();
    if let Some(identity) = &settings.identity {
        options.identity = identity.clone();
    }
    options.api_key.clone_from(&settings.api_key);
    options.metrics_meter = Some(convo_metrics::client_meter());
    let connection = Connection::connect(options).await.map_err(|source| {
        ConnectError::Connect { address: settings.address.to_string(), source: Box::new(source) }
    })?;
    Client::new(connection, ClientOptions::new(settings.namespace.clone()).build())
        .map_err(ConnectError::Client)
}

/// One unary call with the request's own metadata (namespace, API key, deadline); the
/// response's metadata and message bytes.
pub async fn unary(
    channel: &Channel,
    path: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(HeaderMap, Bytes), Status> {
    let path = PathAndQuery::try_from(path)
        .map_err(|e| Status::internal(format!("bad method path {path}: {e}")))?;
    let mut grpc =
        tonic::client::Grpc::new(channel.clone()).accept_compressed(CompressionEncoding::Gzip);
    grpc.ready().await.map_err(|e| Status::unavailable(format!("Temporal unreachable: {e}")))?;
    let mut request = tonic::Request::new(body);
    *request.metadata_mut() = MetadataMap::from_headers(headers);
    let response = grpc.unary(request, path, Raw).await?;
    let (metadata, body, _) = response.into_parts();
    let mut headers = metadata.into_headers();
    for reserved in ["content-type", "grpc-status", "grpc-message", "grpc-encoding"] {
        headers.remove(reserved);
    }
    Ok((headers, body))
}

/// Messages as bytes, untouched.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}
