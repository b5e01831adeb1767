//! `temporal.api.testservice.v1.TestService`: the Java test server's time-skipping API.

use temporalio_protos::temporal::api::testservice::v1::*;
use tonic::{Request, Response, Status};

use crate::{
    engine::{Engine, dur_nanos, ts_nanos, ts_of},
    pb::testservice::test_service_server::TestService,
};

pub(crate) struct Svc {
    engine: Engine,
}

impl Svc {
    pub(crate) fn new(engine: Engine) -> Self {
        Self { engine }
    }

    /// Answers once every change made so far is durable.
    async fn done<T>(&self, body: T) -> Result<Response<T>, Status> {
        self.engine.sync().await?;
        Ok(Response::new(body))
    }
}

fn duration(d: Option<&prost_wkt_types::Duration>) -> std::time::Duration {
    std::time::Duration::from_nanos(dur_nanos(d).unwrap_or(0) as u64)
}

#[tonic::async_trait]
impl TestService for Svc {
    async fn lock_time_skipping(
        &self,
        _r: Request<LockTimeSkippingRequest>,
    ) -> Result<Response<LockTimeSkippingResponse>, Status> {
        self.engine.lock_time_skipping();
        self.done(LockTimeSkippingResponse::default()).await
    }

    async fn unlock_time_skipping(
        &self,
        _r: Request<UnlockTimeSkippingRequest>,
    ) -> Result<Response<UnlockTimeSkippingResponse>, Status> {
        self.engine
            .unlock_time_skipping()
            .map_err(|e| Status::failed_precondition(e.to_string()))?;
        self.done(UnlockTimeSkippingResponse::default()).await
    }

    async fn sleep(&self, r: Request<SleepRequest>) -> Result<Response<SleepResponse>, Status> {
        self.engine.sleep(duration(r.into_inner().duration.as_ref())).await;
        self.done(SleepResponse::default()).await
    }

    async fn sleep_until(
        &self,
        r: Request<SleepUntilRequest>,
    ) -> Result<Response<SleepResponse>, Status> {
        let t = r
            .into_inner()
            .timestamp
            .ok_or_else(|| Status::invalid_argument("Timestamp is not set on request."))?;
        self.engine.sleep_until(ts_nanos(&t)).await;
        self.done(SleepResponse::default()).await
    }

    async fn unlock_time_skipping_with_sleep(
        &self,
        r: Request<SleepRequest>,
    ) -> Result<Response<SleepResponse>, Status> {
        self.engine.unlock_with_sleep(duration(r.into_inner().duration.as_ref())).await;
        self.done(SleepResponse::default()).await
    }

    async fn get_current_time(
        &self,
        _r: Request<()>,
    ) -> Result<Response<GetCurrentTimeResponse>, Status> {
        self.done(GetCurrentTimeResponse { time: ts_of(self.engine.now_nanos()) }).await
    }
}
