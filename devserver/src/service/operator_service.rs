//! `temporal.api.operatorservice.v1.OperatorService`: the search-attribute registry.

use temporalio_protos::temporal::api::{enums::v1::IndexedValueType, operatorservice::v1::*};
use tonic::{Request, Response, Status};

use crate::{engine::Engine, pb::operatorservice::operator_service_server::OperatorService};

pub(crate) struct Svc {
    engine: Engine,
}

impl Svc {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }
}

fn namespace(ns: String) -> String {
    // The CLI and older SDKs leave the namespace empty and mean `default`.
    if ns.is_empty() { crate::DEFAULT_NAMESPACE.to_owned() } else { ns }
}

#[tonic::async_trait]
impl OperatorService for Svc {
    async fn add_search_attributes(
        &self,
        r: Request<AddSearchAttributesRequest>,
    ) -> Result<Response<AddSearchAttributesResponse>, Status> {
        let r = r.into_inner();
        let attrs = r
            .search_attributes
            .into_iter()
            .map(|(name, ty)| {
                (name, IndexedValueType::try_from(ty).unwrap_or(IndexedValueType::Unspecified))
            })
            .collect();
        self.engine.with_state(|st| st.add_search_attributes(&namespace(r.namespace), attrs))?;
        self.engine.sync().await?;
        Ok(Response::new(AddSearchAttributesResponse::default()))
    }

    async fn remove_search_attributes(
        &self,
        r: Request<RemoveSearchAttributesRequest>,
    ) -> Result<Response<RemoveSearchAttributesResponse>, Status> {
        let r = r.into_inner();
        self.engine.with_state(|st| {
            st.remove_search_attributes(&namespace(r.namespace), r.search_attributes)
        })?;
        self.engine.sync().await?;
        Ok(Response::new(RemoveSearchAttributesResponse::default()))
    }

    async fn list_search_attributes(
        &self,
        r: Request<ListSearchAttributesRequest>,
    ) -> Result<Response<ListSearchAttributesResponse>, Status> {
        let ns = namespace(r.into_inner().namespace);
        let (custom, system) = self.engine.with_state(|st| st.list_search_attributes(&ns))?;
        Ok(Response::new(ListSearchAttributesResponse {
            custom_attributes: custom.into_iter().map(|(n, t)| (n, t as i32)).collect(),
            system_attributes: system.into_iter().map(|(n, t)| (n, t as i32)).collect(),
            storage_schema: Default::default(),
        }))
    }
}
