//! Server stubs generated in `build.rs`; every message type is `temporalio_protos`'.
#![allow(unreachable_pub, missing_docs, dead_code, clippy::all)]

pub(crate) mod workflowservice {
    tonic::include_proto!("temporal.api.workflowservice.v1");
}
pub(crate) mod testservice {
    tonic::include_proto!("temporal.api.testservice.v1");
}
pub(crate) mod operatorservice {
    tonic::include_proto!("temporal.api.operatorservice.v1");
}
pub(crate) mod health {
    tonic::include_proto!("grpc.health.v1");
}
