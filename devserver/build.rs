//! Generates the gRPC *server* stubs for the Temporal services the devserver speaks.
//!
//! `temporalio-protos` compiles every message but builds clients only. Its build script exports
//! the descriptor set it compiled (`DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH`); we filter it to the
//! service files and point every message back at `temporalio_protos` with `extern_path`, so the
//! server and the official SDK share one set of types and no `.proto` file is copied or needs
//! `protoc`.

use prost::Message;

const SERVICES: &[&str] = &[
    "temporal/api/workflowservice/v1/service.proto",
    "temporal/api/testservice/v1/service.proto",
    "temporal/api/operatorservice/v1/service.proto",
    "health/v1/health.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::var("DEP_TEMPORALIO_PROTOS_DESCRIPTOR_PATH").map_err(
        |_| "temporalio-protos must be a direct dependency (it exports the descriptor path)",
    )?;
    println!("cargo:rerun-if-changed={path}");
    let mut fds = prost_types::FileDescriptorSet::decode(std::fs::read(&path)?.as_slice())?;
    fds.file.retain(|f| SERVICES.contains(&f.name()));
    tonic_prost_build::configure()
        .build_client(false)
        .build_server(true)
        .build_transport(false)
        .generate_default_stubs(true)
        .extern_path(".temporal", "::temporalio_protos::temporal")
        .extern_path(".grpc", "::temporalio_protos::grpc")
        .compile_fds(fds)?;
    Ok(())
}
