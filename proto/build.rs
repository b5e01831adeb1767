//! Compiles `convo/v1/*.proto` with protox (pure Rust, so no `protoc`) into client and server
//! stubs, and writes the descriptor set that gRPC server reflection serves.

use prost::Message;

const FILES: &[&str] = &[
    "convo/v1/common.proto",
    "convo/v1/conversation.proto",
    "convo/v1/message.proto",
    "convo/v1/window.proto",
    "convo/v1/inbound.proto",
    "convo/v1/workspace.proto",
    "convo/v1/template.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    for file in FILES {
        println!("cargo:rerun-if-changed={file}");
    }
    let fds = protox::compile(FILES, ["."])?;
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("convo_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        // Ordered maps: template variables compare and serialise deterministically.
        .btree_map(".")
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .compile_fds(fds)?;
    Ok(())
}
