//! The sandbox's memory: accepted sends, the idempotency index, the armed faults and the
//! latency.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard, OnceLock},
    time::{Duration, SystemTime},
};

use convo_domain::{
    Channel, MessageId, Timestamp,
    window::{Content, TemplateButtonParam, TemplateParams, TemplateText},
};
use tokio::sync::watch;

pub use convo_wire::sandbox::RecordedSend;

use super::{Fault, FaultRule};
use convo_store::Store;

/// A send as a wire handler parsed it, before the sandbox gives it an id.
pub(crate) struct Incoming {
    pub(crate) channel: Channel,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) content: Content,
    pub(crate) idempotency_key: Option<String>,
    pub(crate) human_agent_tag: bool,
    pub(crate) template_language: Option<String>,
    pub(crate) template_params: Vec<String>,
    pub(crate) rendered: Option<TemplateText>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) traffic_type: Option<String>,
}

impl Incoming {
    pub(crate) fn new(channel: Channel, from: String, to: String, content: Content) -> Self {
        Self {
            channel,
            from,
            to,
            content,
            idempotency_key: None,
            human_agent_tag: false,
            template_language: None,
            template_params: Vec::new(),
            rendered: None,
            headers: Vec::new(),
            traffic_type: None,
        }
    }
}

/// What the sandbox answers a send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Accepted now, or earlier under the same key (`duplicate`).
    Accepted { id: String, duplicate: bool },
    /// An armed fault matched.
    Failed(Fault),
}

#[derive(Default)]
struct Inner {
    sends: Vec<RecordedSend>,
    by_key: HashMap<(Channel, String), String>,
    faults: Vec<FaultRule>,
    next_seq: u64,
    latency: Duration,
}

/// State shared by the HTTP and SMTP listeners and the handle.
pub(crate) struct Shared {
    inner: Mutex<Inner>,
    count: watch::Sender<usize>,
    /// Where template sends find their template, to render them.
    templates: OnceLock<Store>,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            count: watch::Sender::new(0),
            templates: OnceLock::new(),
        }
    }

    /// Renders template sends from `store`'s registry from now on.
    pub(crate) fn render_templates_from(&self, store: Store) {
        let _ = self.templates.set(store);
    }

    /// The registered template `send` names, filled with the values it carries: the message
    /// (its id is the idempotency key) says whose workspace it is.
    async fn render(&self, send: &Incoming) -> Option<TemplateText> {
        let Content::Template { name, params } = &send.content else { return None };
        let store = self.templates.get()?;
        let key = send.idempotency_key.as_deref()?;
        let message = store.message(&MessageId::new(key)).await.ok()?;
        let template = store.template(&message.workspace_id, message.channel, name).await.ok()?;
        if send.channel != Channel::Sms {
            return Some(template.render(params));
        }
        // Twilio's `ContentVariables` are one map over the whole template: every component's
        // placeholder finds its value there by name.
        let flat = TemplateParams {
            header: params.body.clone(),
            buttons: params
                .body
                .iter()
                .map(|p| TemplateButtonParam {
                    index: u32::MAX,
                    sub_type: "url".to_owned(),
                    name: p.name.clone(),
                    value: p.value.clone(),
                })
                .collect(),
            ..TemplateParams::clone(params)
        };
        Some(template.render(&flat))
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Consumes one use of the first armed fault matching `channel` and `to`.
    pub(crate) fn take_fault(&self, channel: Channel, to: &str) -> Option<Fault> {
        let mut inner = self.lock();
        let index = inner.faults.iter().position(|rule| rule.matches(channel, to))?;
        let rule = &mut inner.faults[index];
        let fault = rule.fault.clone();
        if let Some(times) = rule.times.as_mut() {
            *times -= 1;
            if *times == 0 {
                inner.faults.remove(index);
            }
        }
        Some(fault)
    }

    /// Records `send` unless its key was seen; `make_id` turns the sequence number into the
    /// channel's id format.
    pub(crate) fn record(&self, send: Incoming, make_id: impl FnOnce(u64) -> String) -> Outcome {
        let mut inner = self.lock();
        if let Some(key) = &send.idempotency_key
            && let Some(id) = inner.by_key.get(&(send.channel, key.clone()))
        {
            return Outcome::Accepted { id: id.clone(), duplicate: true };
        }
        inner.next_seq += 1;
        let seq = inner.next_seq;
        let id = make_id(seq);
        if let Some(key) = &send.idempotency_key {
            inner.by_key.insert((send.channel, key.clone()), id.clone());
        }
        inner.sends.push(RecordedSend {
            seq,
            channel: send.channel,
            from: send.from,
            to: send.to,
            content: send.content,
            idempotency_key: send.idempotency_key,
            provider_message_id: id.clone(),
            human_agent_tag: send.human_agent_tag,
            template_language: send.template_language,
            template_params: send.template_params,
            rendered: send.rendered,
            headers: send.headers,
            traffic_type: send.traffic_type,
            at: Timestamp::from_system_time(SystemTime::now()),
        });
        let count = inner.sends.len();
        drop(inner);
        self.count.send_replace(count);
        Outcome::Accepted { id, duplicate: false }
    }

    /// Waits out the latency, checks faults, then records: the order a real provider follows
    /// (an outage answers even a repeat).
    pub(crate) async fn attempt(
        &self,
        mut send: Incoming,
        make_id: impl FnOnce(u64) -> String,
    ) -> Outcome {
        self.pause().await;
        if let Some(fault) = self.take_fault(send.channel, &send.to) {
            return Outcome::Failed(fault);
        }
        if send.rendered.is_none() {
            send.rendered = self.render(&send).await;
        }
        self.record(send, make_id)
    }

    pub(crate) fn sends(&self) -> Vec<RecordedSend> {
        self.lock().sends.clone()
    }

    /// Forgets every send and idempotency key, so a test can reuse one sandbox.
    pub(crate) fn clear_sends(&self) {
        let mut inner = self.lock();
        inner.sends.clear();
        inner.by_key.clear();
        inner.next_seq = 0;
        drop(inner);
        self.count.send_replace(0);
    }

    pub(crate) fn add_fault(&self, rule: FaultRule) {
        self.lock().faults.push(rule);
    }

    pub(crate) fn faults(&self) -> Vec<FaultRule> {
        self.lock().faults.clone()
    }

    pub(crate) fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    pub(crate) fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Sleeps for the latency before a send is answered (not at all by default).
    pub(crate) async fn pause(&self) {
        let latency = self.lock().latency;
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<usize> {
        self.count.subscribe()
    }
}
