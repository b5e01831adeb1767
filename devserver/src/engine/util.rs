//! Conversions between virtual nanos and protobuf time types, and event-type bookkeeping.

use prost_wkt_types::{Duration as PbDuration, Timestamp};
use temporalio_protos::temporal::api::{
    enums::v1::EventType,
    failure::v1::{Failure, ServerFailureInfo, TimeoutFailureInfo, failure::FailureInfo},
    history::v1::history_event::Attributes,
};

use crate::clock::Nanos;

pub(crate) const NANOS_PER_SEC: i64 = 1_000_000_000;

pub(crate) fn ts(t: Nanos) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: t.div_euclid(NANOS_PER_SEC),
        nanos: t.rem_euclid(NANOS_PER_SEC) as i32,
    })
}

pub(crate) fn ts_nanos(t: &Timestamp) -> Nanos {
    t.seconds.saturating_mul(NANOS_PER_SEC).saturating_add(t.nanos as i64)
}

/// A protobuf duration in nanos; `None` and non-positive durations mean "not set".
pub(crate) fn dur_nanos(d: Option<&PbDuration>) -> Option<Nanos> {
    let d = d?;
    let n = d.seconds.saturating_mul(NANOS_PER_SEC).saturating_add(d.nanos as i64);
    (n > 0).then_some(n)
}

pub(crate) fn dur(n: Nanos) -> Option<PbDuration> {
    Some(PbDuration { seconds: n / NANOS_PER_SEC, nanos: (n % NANOS_PER_SEC) as i32 })
}

pub(crate) fn secs(s: i64) -> Nanos {
    s * NANOS_PER_SEC
}

/// A failure the server itself raised.
pub(crate) fn server_failure(message: impl Into<String>, non_retryable: bool) -> Failure {
    Failure {
        message: message.into(),
        source: "Server".into(),
        failure_info: Some(FailureInfo::ServerFailureInfo(ServerFailureInfo { non_retryable })),
        ..Default::default()
    }
}

pub(crate) fn timeout_failure(
    message: impl Into<String>,
    timeout_type: i32,
    cause: Option<Failure>,
    heartbeat: Option<temporalio_protos::temporal::api::common::v1::Payloads>,
) -> Failure {
    Failure {
        message: message.into(),
        source: "Server".into(),
        cause: cause.map(Box::new),
        failure_info: Some(FailureInfo::TimeoutFailureInfo(TimeoutFailureInfo {
            timeout_type,
            last_heartbeat_details: heartbeat,
        })),
        ..Default::default()
    }
}

macro_rules! event_types {
    ($($variant:ident => $ty:ident,)*) => {
        /// The `event_type` that goes with an attributes variant.
        pub(crate) fn event_type_of(attrs: &Attributes) -> EventType {
            match attrs {
                $(Attributes::$variant(_) => EventType::$ty,)*
                _ => EventType::Unspecified,
            }
        }
    };
}

event_types! {
    WorkflowExecutionStartedEventAttributes => WorkflowExecutionStarted,
    WorkflowExecutionCompletedEventAttributes => WorkflowExecutionCompleted,
    WorkflowExecutionFailedEventAttributes => WorkflowExecutionFailed,
    WorkflowExecutionTimedOutEventAttributes => WorkflowExecutionTimedOut,
    WorkflowTaskScheduledEventAttributes => WorkflowTaskScheduled,
    WorkflowTaskStartedEventAttributes => WorkflowTaskStarted,
    WorkflowTaskCompletedEventAttributes => WorkflowTaskCompleted,
    WorkflowTaskTimedOutEventAttributes => WorkflowTaskTimedOut,
    WorkflowTaskFailedEventAttributes => WorkflowTaskFailed,
    ActivityTaskScheduledEventAttributes => ActivityTaskScheduled,
    ActivityTaskStartedEventAttributes => ActivityTaskStarted,
    ActivityTaskCompletedEventAttributes => ActivityTaskCompleted,
    ActivityTaskFailedEventAttributes => ActivityTaskFailed,
    ActivityTaskTimedOutEventAttributes => ActivityTaskTimedOut,
    TimerStartedEventAttributes => TimerStarted,
    TimerFiredEventAttributes => TimerFired,
    ActivityTaskCancelRequestedEventAttributes => ActivityTaskCancelRequested,
    ActivityTaskCanceledEventAttributes => ActivityTaskCanceled,
    TimerCanceledEventAttributes => TimerCanceled,
    MarkerRecordedEventAttributes => MarkerRecorded,
    WorkflowExecutionSignaledEventAttributes => WorkflowExecutionSignaled,
    WorkflowExecutionTerminatedEventAttributes => WorkflowExecutionTerminated,
    WorkflowExecutionCancelRequestedEventAttributes => WorkflowExecutionCancelRequested,
    WorkflowExecutionCanceledEventAttributes => WorkflowExecutionCanceled,
    UpsertWorkflowSearchAttributesEventAttributes => UpsertWorkflowSearchAttributes,
    WorkflowExecutionUpdateAcceptedEventAttributes => WorkflowExecutionUpdateAccepted,
    WorkflowExecutionUpdateAdmittedEventAttributes => WorkflowExecutionUpdateAdmitted,
    WorkflowExecutionContinuedAsNewEventAttributes => WorkflowExecutionContinuedAsNew,
    WorkflowPropertiesModifiedEventAttributes => WorkflowPropertiesModified,
    SignalExternalWorkflowExecutionInitiatedEventAttributes => SignalExternalWorkflowExecutionInitiated,
    SignalExternalWorkflowExecutionFailedEventAttributes => SignalExternalWorkflowExecutionFailed,
    ExternalWorkflowExecutionSignaledEventAttributes => ExternalWorkflowExecutionSignaled,
    RequestCancelExternalWorkflowExecutionInitiatedEventAttributes => RequestCancelExternalWorkflowExecutionInitiated,
    RequestCancelExternalWorkflowExecutionFailedEventAttributes => RequestCancelExternalWorkflowExecutionFailed,
    ExternalWorkflowExecutionCancelRequestedEventAttributes => ExternalWorkflowExecutionCancelRequested,
    WorkflowExecutionUpdateCompletedEventAttributes => WorkflowExecutionUpdateCompleted,
    StartChildWorkflowExecutionInitiatedEventAttributes => StartChildWorkflowExecutionInitiated,
    StartChildWorkflowExecutionFailedEventAttributes => StartChildWorkflowExecutionFailed,
    ChildWorkflowExecutionStartedEventAttributes => ChildWorkflowExecutionStarted,
    ChildWorkflowExecutionCompletedEventAttributes => ChildWorkflowExecutionCompleted,
    ChildWorkflowExecutionFailedEventAttributes => ChildWorkflowExecutionFailed,
    ChildWorkflowExecutionCanceledEventAttributes => ChildWorkflowExecutionCanceled,
    ChildWorkflowExecutionTimedOutEventAttributes => ChildWorkflowExecutionTimedOut,
    ChildWorkflowExecutionTerminatedEventAttributes => ChildWorkflowExecutionTerminated,
}

/// Whether a buffered event is a completion that Temporal moves to the end of the flushed
/// batch (`historybuilder/event_store.go::reorderBuffer`): an activity's or a child
/// workflow's end. The transient `ActivityTaskStarted` is not moved; the completion's
/// `started_event_id` is wired to it when ids are assigned.
pub(crate) fn reordered_last(attrs: &Attributes) -> bool {
    matches!(
        attrs,
        Attributes::ActivityTaskCompletedEventAttributes(_)
            | Attributes::ActivityTaskFailedEventAttributes(_)
            | Attributes::ActivityTaskTimedOutEventAttributes(_)
            | Attributes::ActivityTaskCanceledEventAttributes(_)
            | Attributes::ChildWorkflowExecutionCompletedEventAttributes(_)
            | Attributes::ChildWorkflowExecutionFailedEventAttributes(_)
            | Attributes::ChildWorkflowExecutionCanceledEventAttributes(_)
            | Attributes::ChildWorkflowExecutionTimedOutEventAttributes(_)
            | Attributes::ChildWorkflowExecutionTerminatedEventAttributes(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_round_trip_including_before_epoch() {
        for t in [0, 1, NANOS_PER_SEC + 5, -3, 1_763_000_000 * NANOS_PER_SEC + 999] {
            assert_eq!(ts_nanos(&ts(t).unwrap()), t);
        }
    }

    #[test]
    fn durations_unset_when_not_positive() {
        assert_eq!(dur_nanos(None), None);
        assert_eq!(dur_nanos(dur(0).as_ref()), None);
        assert_eq!(dur_nanos(dur(secs(3)).as_ref()), Some(secs(3)));
    }
}
