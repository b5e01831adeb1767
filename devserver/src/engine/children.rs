//! Child workflows (the StartChildWorkflowExecution command).
//!
//! The command writes `StartChildWorkflowExecutionInitiated` in the parent. The child is then
//! started like any workflow, with the parent recorded in its `WorkflowExecutionStarted`, and
//! the parent learns the outcome: `ChildWorkflowExecutionStarted`, or
//! `StartChildWorkflowExecutionFailed` (WORKFLOW_ALREADY_EXISTS, NAMESPACE_NOT_FOUND). Temporal
//! does this in transfer tasks; both runs live in this engine, so it happens in the same
//! transition, right after the parent's workflow task is recorded (see `external`).
//!
//! When a child's chain of runs ends (not a continue-as-new or a retry, which hand the parent
//! link to the next run), the parent gets `ChildWorkflowExecution{Completed, Failed, Canceled,
//! TimedOut, Terminated}`. When a parent run closes, each child still open gets the parent
//! close policy it was started with: terminated (the default), asked to cancel, or abandoned.
//! Both links are part of the runs' snapshots, so they survive a restart.

use prost::Message;
use temporalio_protos::temporal::api::{
    command::v1::StartChildWorkflowExecutionCommandAttributes as StartChildCommand,
    common::v1::{WorkflowExecution, WorkflowType},
    enums::v1::{
        ParentClosePolicy, StartChildWorkflowExecutionFailedCause, TaskQueueKind,
        WorkflowIdReusePolicy,
    },
    history::v1::{
        ChildWorkflowExecutionCanceledEventAttributes,
        ChildWorkflowExecutionCompletedEventAttributes,
        ChildWorkflowExecutionFailedEventAttributes, ChildWorkflowExecutionStartedEventAttributes,
        ChildWorkflowExecutionTerminatedEventAttributes,
        ChildWorkflowExecutionTimedOutEventAttributes, HistoryEvent,
        StartChildWorkflowExecutionFailedEventAttributes,
        StartChildWorkflowExecutionInitiatedEventAttributes, history_event::Attributes,
    },
    taskqueue::v1::TaskQueue,
};

use super::{
    Ctx, Error, Execution, State,
    external::{External, ExternalAction},
    util,
    workflow::StartParams,
};

/// A child's parent: who to tell when the child's chain of runs ends.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ParentLink {
    #[prost(string, tag = "1")]
    pub(crate) namespace: String,
    #[prost(string, tag = "2")]
    pub(crate) workflow_id: String,
    #[prost(string, tag = "3")]
    pub(crate) run_id: String,
    #[prost(int64, tag = "4")]
    pub(crate) initiated_event_id: i64,
    #[prost(message, optional, tag = "5")]
    pub(crate) root: Option<WorkflowExecution>,
}

impl ParentLink {
    /// The parent run.
    pub(crate) fn execution(&self) -> WorkflowExecution {
        WorkflowExecution { workflow_id: self.workflow_id.clone(), run_id: self.run_id.clone() }
    }

    /// The root of the chain of parents: the recorded root, else the parent itself.
    pub(crate) fn root_execution(&self) -> WorkflowExecution {
        self.root.clone().unwrap_or_else(|| self.execution())
    }
}

/// A child a run started and has not heard the end of.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct ChildLink {
    #[prost(int64, tag = "1")]
    pub(crate) initiated_event_id: i64,
    #[prost(string, tag = "2")]
    pub(crate) namespace: String,
    #[prost(string, tag = "3")]
    pub(crate) workflow_id: String,
    #[prost(string, tag = "4")]
    pub(crate) workflow_type: String,
    /// Empty until the child has started.
    #[prost(string, tag = "5")]
    pub(crate) run_id: String,
    #[prost(enumeration = "ParentClosePolicy", tag = "6")]
    pub(crate) parent_close_policy: i32,
}

impl State {
    /// Starts the child a parent's command asked for, and tells the parent how it went.
    pub(crate) fn start_child(
        &mut self,
        parent_run: &str,
        initiated_event_id: i64,
        completed_event_id: i64,
        params: StartParams,
    ) {
        let namespace = params.namespace.clone();
        let workflow_id = params.workflow_id.clone();
        let workflow_type = Some(WorkflowType { name: params.workflow_type.clone() });
        let header = params.header.clone();
        let started = self.start_workflow(params, None);
        let namespace_id = self.ctx.namespaces.get(&namespace).cloned().unwrap_or_default();
        let outcome = match &started {
            Ok(s) => Attributes::ChildWorkflowExecutionStartedEventAttributes(
                ChildWorkflowExecutionStartedEventAttributes {
                    namespace,
                    namespace_id,
                    initiated_event_id,
                    workflow_execution: Some(WorkflowExecution {
                        workflow_id,
                        run_id: s.run_id.clone(),
                    }),
                    workflow_type,
                    header,
                },
            ),
            Err(e) => Attributes::StartChildWorkflowExecutionFailedEventAttributes(
                StartChildWorkflowExecutionFailedEventAttributes {
                    namespace,
                    namespace_id,
                    workflow_id,
                    workflow_type,
                    cause: match e {
                        Error::NamespaceNotFound(_) => {
                            StartChildWorkflowExecutionFailedCause::NamespaceNotFound
                        }
                        _ => StartChildWorkflowExecutionFailedCause::WorkflowAlreadyExists,
                    } as i32,
                    initiated_event_id,
                    workflow_task_completed_event_id: completed_event_id,
                    ..Default::default()
                },
            ),
        };
        if let Some((exec, ctx)) = self.exec_mut(parent_run)
            && exec.is_running()
        {
            match &started {
                Ok(s) => {
                    if let Some(c) = exec
                        .children
                        .iter_mut()
                        .find(|c| c.initiated_event_id == initiated_event_id)
                    {
                        c.run_id = s.run_id.clone();
                    }
                }
                Err(_) => exec.children.retain(|c| c.initiated_event_id != initiated_event_id),
            }
            exec.deliver(ctx, vec![outcome]);
        }
    }

    /// Handles the runs closed by this transition: tells their parents, and applies their
    /// parent close policies to their open children. Closing a child may close others in
    /// turn; they are handled in the same loop.
    pub(crate) fn propagate_closes(&mut self) {
        while let Some(run_id) = self.ctx.closed_runs.pop() {
            let Some(exec) = self.execs.get(run_id) else { continue };
            if exec.parent.is_none() && exec.children.is_empty() {
                continue;
            }
            let parent = exec.parent.as_deref().cloned();
            let children = exec.children.clone();
            // The closing event says how the child ended; only a parent needs it.
            let closing = parent.as_ref().and_then(|_| self.history_of(&exec).ok()?.last());
            let child = (
                exec.namespace.to_string(),
                WorkflowExecution {
                    workflow_id: exec.workflow_id.to_string(),
                    run_id: run_id.to_string(),
                },
                exec.workflow_type.to_string(),
            );
            drop(exec);
            if let (Some(parent), Some(closing)) = (parent, closing) {
                self.tell_parent(&parent, child, closing);
            }
            for c in children {
                self.apply_parent_close_policy(&run_id.to_string(), &c);
            }
        }
    }

    /// Writes the child's end into its parent, unless the run handed its link on (continued
    /// as new, or retried) or the parent is no longer waiting for it.
    fn tell_parent(
        &mut self,
        parent: &ParentLink,
        (namespace, execution, workflow_type): (String, WorkflowExecution, String),
        closing: HistoryEvent,
    ) {
        let Some((exec, ctx)) = self.exec_mut(&parent.run_id) else { return };
        if !exec.is_running()
            || !exec.children.iter().any(|c| c.initiated_event_id == parent.initiated_event_id)
        {
            return;
        }
        let initiated_event_id = parent.initiated_event_id;
        let started_event_id = (0..exec.history.len())
            .rev()
            .filter_map(|i| exec.history.get(i))
            .find_map(|e| match e.attributes {
                Some(Attributes::ChildWorkflowExecutionStartedEventAttributes(a))
                    if a.initiated_event_id == initiated_event_id =>
                {
                    Some(e.event_id)
                }
                _ => None,
            })
            .unwrap_or_default();
        let namespace_id = ctx.namespaces.get(&namespace).cloned().unwrap_or_default();
        let (execution, workflow_type) =
            (Some(execution), Some(WorkflowType { name: workflow_type }));
        let event = match closing.attributes {
            Some(Attributes::WorkflowExecutionCompletedEventAttributes(a))
                if a.new_execution_run_id.is_empty() =>
            {
                Attributes::ChildWorkflowExecutionCompletedEventAttributes(
                    ChildWorkflowExecutionCompletedEventAttributes {
                        result: a.result,
                        namespace,
                        namespace_id,
                        workflow_execution: execution,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                    },
                )
            }
            Some(Attributes::WorkflowExecutionFailedEventAttributes(a))
                if a.new_execution_run_id.is_empty() =>
            {
                Attributes::ChildWorkflowExecutionFailedEventAttributes(
                    ChildWorkflowExecutionFailedEventAttributes {
                        failure: a.failure,
                        namespace,
                        namespace_id,
                        workflow_execution: execution,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        retry_state: a.retry_state,
                    },
                )
            }
            Some(Attributes::WorkflowExecutionTimedOutEventAttributes(a))
                if a.new_execution_run_id.is_empty() =>
            {
                Attributes::ChildWorkflowExecutionTimedOutEventAttributes(
                    ChildWorkflowExecutionTimedOutEventAttributes {
                        namespace,
                        namespace_id,
                        workflow_execution: execution,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                        retry_state: a.retry_state,
                    },
                )
            }
            Some(Attributes::WorkflowExecutionCanceledEventAttributes(a)) => {
                Attributes::ChildWorkflowExecutionCanceledEventAttributes(
                    ChildWorkflowExecutionCanceledEventAttributes {
                        details: a.details,
                        namespace,
                        namespace_id,
                        workflow_execution: execution,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                    },
                )
            }
            Some(Attributes::WorkflowExecutionTerminatedEventAttributes(_)) => {
                Attributes::ChildWorkflowExecutionTerminatedEventAttributes(
                    ChildWorkflowExecutionTerminatedEventAttributes {
                        namespace,
                        namespace_id,
                        workflow_execution: execution,
                        workflow_type,
                        initiated_event_id,
                        started_event_id,
                    },
                )
            }
            // Continued as new or retried: the next run carries the link.
            _ => return,
        };
        exec.children.retain(|c| c.initiated_event_id != initiated_event_id);
        exec.deliver(ctx, vec![event]);
    }

    /// Terminates, asks to cancel, or leaves alone (ABANDON) a child of a closed run.
    fn apply_parent_close_policy(&mut self, parent_run: &str, child: &ChildLink) {
        let policy = ParentClosePolicy::try_from(child.parent_close_policy)
            .unwrap_or(ParentClosePolicy::Terminate);
        if policy == ParentClosePolicy::Abandon {
            return;
        }
        // The child's current run, if it is still this parent's child (it may have
        // continued as new; a later workflow with the same id is not).
        let Some(current) = self.current.get(&child.namespace, &child.workflow_id) else {
            return;
        };
        let ours = self.execs.get(current).is_some_and(|e| {
            e.is_running()
                && e.parent.as_deref().is_some_and(|p| {
                    p.run_id == parent_run && p.initiated_event_id == child.initiated_event_id
                })
        });
        if !ours {
            return;
        }
        let current = current.to_string();
        let reason = "by parent close policy".to_owned();
        let identity = format!("workflow {parent_run}");
        if policy == ParentClosePolicy::RequestCancel {
            let _ = self.request_cancel(
                &child.namespace,
                &child.workflow_id,
                &current,
                reason,
                identity,
                String::new(),
            );
        } else {
            self.terminate_run(&current, reason, None, identity);
        }
    }
}

impl Execution {
    /// The namespace a StartChildWorkflowExecution command starts its child in: the one it
    /// names, else the parent's own.
    #[allow(deprecated)] // the namespace field still arrives from SDKs
    pub(super) fn child_namespace<'a>(&'a self, a: &'a StartChildCommand) -> &'a str {
        if a.namespace.is_empty() { &self.namespace } else { &a.namespace }
    }

    /// Writes `StartChildWorkflowExecutionInitiated` and owes the child's start.
    #[allow(deprecated)] // control and inherit_build_id are still sent and recorded
    pub(super) fn initiate_child(
        &mut self,
        ctx: &mut Ctx,
        a: StartChildCommand,
        completed_id: i64,
        identity: &str,
    ) {
        let namespace = self.child_namespace(&a).to_owned();
        let namespace_id = ctx.namespaces.get(&namespace).cloned().unwrap_or_default();
        let task_queue = a
            .task_queue
            .as_ref()
            .map(|q| q.name.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.task_queue.to_string());
        let parent_close_policy = match a.parent_close_policy {
            0 => ParentClosePolicy::Terminate as i32,
            p => p,
        };
        let workflow_type = a.workflow_type.clone().unwrap_or_default().name;
        let initiated_event_id = self.append(
            ctx,
            Attributes::StartChildWorkflowExecutionInitiatedEventAttributes(
                StartChildWorkflowExecutionInitiatedEventAttributes {
                    namespace: namespace.clone(),
                    namespace_id,
                    workflow_id: a.workflow_id.clone(),
                    workflow_type: a.workflow_type.clone(),
                    task_queue: Some(TaskQueue {
                        name: task_queue.clone(),
                        kind: TaskQueueKind::Normal as i32,
                        normal_name: String::new(),
                    }),
                    input: a.input.clone(),
                    workflow_execution_timeout: a.workflow_execution_timeout,
                    workflow_run_timeout: a.workflow_run_timeout,
                    workflow_task_timeout: a.workflow_task_timeout,
                    parent_close_policy,
                    control: a.control.clone(),
                    workflow_task_completed_event_id: completed_id,
                    workflow_id_reuse_policy: a.workflow_id_reuse_policy,
                    retry_policy: a.retry_policy.clone(),
                    header: a.header.clone(),
                    memo: a.memo.clone(),
                    search_attributes: a.search_attributes.clone(),
                    inherit_build_id: a.inherit_build_id,
                    priority: a.priority.clone(),
                    ..Default::default()
                },
            ),
        );
        self.children.push(ChildLink {
            initiated_event_id,
            namespace: namespace.clone(),
            workflow_id: a.workflow_id.clone(),
            workflow_type: workflow_type.clone(),
            run_id: String::new(),
            parent_close_policy,
        });
        // The parent's root, or, for a top-level parent, none: then the parent is the root.
        let root = self.parent.as_deref().map(ParentLink::root_execution);
        let params = StartParams {
            namespace: namespace.clone(),
            workflow_id: a.workflow_id.clone(),
            workflow_type,
            task_queue,
            input: a.input,
            execution_timeout: util::dur_nanos(a.workflow_execution_timeout.as_ref()),
            run_timeout: util::dur_nanos(a.workflow_run_timeout.as_ref()),
            task_timeout: util::dur_nanos(a.workflow_task_timeout.as_ref()),
            identity: identity.to_owned(),
            // One per initiating event, so the child is started once.
            request_id: format!("{}/{initiated_event_id}", self.run_id),
            reuse_policy: WorkflowIdReusePolicy::try_from(a.workflow_id_reuse_policy)
                .unwrap_or_default(),
            retry_policy: a.retry_policy,
            memo: a.memo,
            search_attributes: a.search_attributes,
            header: a.header,
            priority: a.priority,
            parent: Some(ParentLink {
                namespace: self.namespace.to_string(),
                workflow_id: self.workflow_id.to_string(),
                run_id: self.run_id.to_string(),
                initiated_event_id,
                root,
            }),
            ..Default::default()
        };
        self.owed_external.push(External {
            initiated_event_id,
            completed_event_id: completed_id,
            namespace,
            target: WorkflowExecution { workflow_id: a.workflow_id, run_id: String::new() },
            action: ExternalAction::StartChild(Box::new(params)),
        });
    }
}
