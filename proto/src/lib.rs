//! `convo-proto`: convo's public gRPC API, generated from `proto/convo/v1/*.proto` at build time
//! with protox (no `protoc`), with client and server stubs.
//!
//! The services mirror the HTTP API one to one: `ConversationService`, `MessageService`,
//! `WindowService`, `InboundService`, `WorkspaceService` and `TemplateService`, with the HTTP bodies' field names (so error `field`
//! paths such as `content.text` mean the same on both). Both transports call the same
//! application functions in `convo-api` (`convo_api::grpc` serves these services); this crate
//! holds only the wire types. Maps are generated as `BTreeMap`, so a message's encoding is
//! deterministic (the gRPC transport fingerprints idempotent requests by it).

#![warn(missing_docs)]

/// `convo.v1`: messages and service stubs.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::pedantic)]
pub mod v1 {
    tonic::include_proto!("convo.v1");
}

/// The encoded `FileDescriptorSet` of every convo proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/convo_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message;

    #[test]
    fn descriptor_set_holds_every_service() {
        // Service names appear verbatim in the encoded descriptors.
        let text = String::from_utf8_lossy(super::FILE_DESCRIPTOR_SET);
        for service in [
            "ConversationService",
            "MessageService",
            "WindowService",
            "InboundService",
            "WorkspaceService",
            "TemplateService",
        ] {
            assert!(text.contains(service), "{service} missing from the descriptor set");
        }
        // Imports (google/protobuf/struct.proto) are included, so reflection can serve them.
        let set = prost_types::FileDescriptorSet::decode(super::FILE_DESCRIPTOR_SET).unwrap();
        assert!(set.file.iter().any(|f| f.name() == "google/protobuf/struct.proto"));
        let m = super::v1::Balance { free: 1, reserved: 2, total: 3 };
        assert_eq!(super::v1::Balance::decode(m.encode_to_vec().as_slice()).unwrap(), m);
    }
}
