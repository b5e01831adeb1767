//! Signalling and cancelling another workflow from a workflow (SignalExternal /
//! RequestCancelExternal commands).
//!
//! The command writes its `…Initiated` event; the target gets the signal or cancel request;
//! the source then learns the outcome through `ExternalWorkflowExecutionSignaled` /
//! `ExternalWorkflowExecutionCancelRequested`, or `…Failed` with cause
//! EXTERNAL_WORKFLOW_EXECUTION_NOT_FOUND. Temporal does the delivery in a transfer task; both
//! runs live in this engine, so it happens in the same transition, right after the command's
//! workflow task is recorded.

use temporalio_protos::temporal::api::{
    common::v1::{Header, Payloads, WorkflowExecution},
    enums::v1::{
        CancelExternalWorkflowExecutionFailedCause, SignalExternalWorkflowExecutionFailedCause,
    },
    history::v1::{
        ExternalWorkflowExecutionCancelRequestedEventAttributes,
        ExternalWorkflowExecutionSignaledEventAttributes,
        RequestCancelExternalWorkflowExecutionFailedEventAttributes,
        SignalExternalWorkflowExecutionFailedEventAttributes, history_event::Attributes,
    },
};

use super::{State, workflow::SignalParams};

/// A delivery owed to another workflow by a just-recorded command.
#[derive(Debug)]
pub(crate) struct External {
    pub(crate) initiated_event_id: i64,
    pub(crate) completed_event_id: i64,
    pub(crate) namespace: String,
    pub(crate) target: WorkflowExecution,
    pub(crate) action: ExternalAction,
}

#[derive(Debug)]
pub(crate) enum ExternalAction {
    Signal {
        name: String,
        input: Option<Payloads>,
        header: Option<Header>,
    },
    Cancel {
        reason: String,
    },
    /// A child workflow to start (see `children`).
    StartChild(Box<super::workflow::StartParams>),
}

impl State {
    /// Delivers what `source_run` owes other workflows and records the outcomes in it.
    pub(crate) fn deliver_external(&mut self, source_run: &str, owed: Vec<External>) {
        for External { initiated_event_id, completed_event_id, namespace, target, action } in owed {
            let identity = format!("workflow {source_run}");
            let namespace_id = self.ctx.namespaces.get(&namespace).cloned().unwrap_or_default();
            let outcome = match action {
                ExternalAction::StartChild(params) => {
                    self.start_child(source_run, initiated_event_id, completed_event_id, *params);
                    continue;
                }
                ExternalAction::Signal { name, input, header } => {
                    let signal = SignalParams {
                        signal_name: name,
                        input,
                        identity,
                        // Unique per initiating event, so a retried delivery is absorbed.
                        request_id: format!("{source_run}/{initiated_event_id}"),
                        header,
                    };
                    let delivered = self
                        .resolve(&namespace, &target.workflow_id, &target.run_id)
                        .and_then(|run| self.deliver_signal(&run, &signal))
                        .is_ok();
                    if delivered {
                        Attributes::ExternalWorkflowExecutionSignaledEventAttributes(
                            ExternalWorkflowExecutionSignaledEventAttributes {
                                initiated_event_id,
                                namespace,
                                namespace_id,
                                workflow_execution: Some(target),
                                ..Default::default()
                            },
                        )
                    } else {
                        Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(SignalExternalWorkflowExecutionFailedEventAttributes {
                            cause: SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                            workflow_task_completed_event_id: completed_event_id,
                            namespace,
                            namespace_id,
                            workflow_execution: Some(target),
                            initiated_event_id,
                            ..Default::default()
                        })
                    }
                }
                ExternalAction::Cancel { reason } => {
                    let delivered = self
                        .resolve(&namespace, &target.workflow_id, &target.run_id)
                        .and_then(|run| {
                            self.request_cancel(
                                &namespace,
                                &target.workflow_id,
                                &run,
                                reason,
                                identity,
                                String::new(),
                            )
                        })
                        .is_ok();
                    if delivered {
                        Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(
                            ExternalWorkflowExecutionCancelRequestedEventAttributes {
                                initiated_event_id,
                                namespace,
                                namespace_id,
                                workflow_execution: Some(target),
                            },
                        )
                    } else {
                        Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
                            RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                                cause: CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                                workflow_task_completed_event_id: completed_event_id,
                                namespace,
                                namespace_id,
                                workflow_execution: Some(target),
                                initiated_event_id,
                                ..Default::default()
                            },
                        )
                    }
                }
            };
            if let Some((exec, ctx)) = self.exec_mut(source_run)
                && exec.is_running()
            {
                exec.deliver(ctx, vec![outcome]);
            }
        }
    }
}
