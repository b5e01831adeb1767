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
        for ext in owed {
            if let ExternalAction::StartChild(params) = ext.action {
                self.start_child(
                    source_run,
                    ext.initiated_event_id,
                    ext.completed_event_id,
                    *params,
                );
                continue;
            }
            let target = self.resolve(&ext.namespace, &ext.target.workflow_id, &ext.target.run_id);
            let identity = format!("workflow {source_run}");
            let delivered = match (&ext.action, target) {
                (ExternalAction::Signal { name, input, header }, Ok(run)) => self
                    .deliver_signal(
                        &run,
                        &SignalParams {
                            signal_name: name.clone(),
                            input: input.clone(),
                            identity,
                            // Unique per initiating event, so a retried delivery is absorbed.
                            request_id: format!("{source_run}/{}", ext.initiated_event_id),
                            header: header.clone(),
                        },
                    )
                    .is_ok(),
                (ExternalAction::Cancel { reason }, Ok(run)) => {
                    let (ns, wf) = (ext.namespace.clone(), ext.target.workflow_id.clone());
                    self.request_cancel(&ns, &wf, &run, reason.clone(), identity, String::new())
                        .is_ok()
                }
                (_, Err(_)) | (ExternalAction::StartChild(_), _) => false,
            };
            let namespace_id = self.ctx.namespaces.get(&ext.namespace).cloned().unwrap_or_default();
            let outcome = match (&ext.action, delivered) {
                (ExternalAction::StartChild(_), _) => continue,
                (ExternalAction::Signal { .. }, true) => {
                    Attributes::ExternalWorkflowExecutionSignaledEventAttributes(ExternalWorkflowExecutionSignaledEventAttributes {
                        initiated_event_id: ext.initiated_event_id,
                        namespace: ext.namespace.clone(),
                        namespace_id,
                        workflow_execution: Some(ext.target.clone()),
                        ..Default::default()
                    })
                }
                (ExternalAction::Signal { .. }, false) => {
                    Attributes::SignalExternalWorkflowExecutionFailedEventAttributes(SignalExternalWorkflowExecutionFailedEventAttributes {
                        cause: SignalExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                        workflow_task_completed_event_id: ext.completed_event_id,
                        namespace: ext.namespace.clone(),
                        namespace_id,
                        workflow_execution: Some(ext.target.clone()),
                        initiated_event_id: ext.initiated_event_id,
                        ..Default::default()
                    })
                }
                (ExternalAction::Cancel { .. }, true) => Attributes::ExternalWorkflowExecutionCancelRequestedEventAttributes(
                    ExternalWorkflowExecutionCancelRequestedEventAttributes {
                        initiated_event_id: ext.initiated_event_id,
                        namespace: ext.namespace.clone(),
                        namespace_id,
                        workflow_execution: Some(ext.target.clone()),
                    },
                ),
                (ExternalAction::Cancel { .. }, false) => Attributes::RequestCancelExternalWorkflowExecutionFailedEventAttributes(
                    RequestCancelExternalWorkflowExecutionFailedEventAttributes {
                        cause: CancelExternalWorkflowExecutionFailedCause::ExternalWorkflowExecutionNotFound as i32,
                        workflow_task_completed_event_id: ext.completed_event_id,
                        namespace: ext.namespace.clone(),
                        namespace_id,
                        workflow_execution: Some(ext.target.clone()),
                        initiated_event_id: ext.initiated_event_id,
                        ..Default::default()
                    },
                ),
            };
            if let Some((exec, ctx)) = self.exec_mut(source_run)
                && exec.is_running()
            {
                exec.deliver(ctx, vec![outcome]);
            }
        }
    }
}
