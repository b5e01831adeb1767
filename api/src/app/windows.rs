//! A contact's session window: read it, close it.

use std::time::Duration;

use convo_workflows::contracts::SessionView;

use super::{App, WorkspaceId, rfc3339, types::WindowOut};
use crate::error::ApiError;

/// How often closing re-reads the session while waiting for it to report the close.
const CLOSE_POLL: Duration = Duration::from_millis(20);

fn window_out(contact_id: &str, view: Option<SessionView>) -> WindowOut {
    let Some(view) = view else {
        return WindowOut {
            contact_id: contact_id.to_owned(),
            status: "closed".to_owned(),
            open: false,
            channel: None,
            opened_at: None,
            expires_at: None,
            billing_session_ends_at: None,
            close_reason: None,
            in_session: false,
            last_inbound_at: None,
        };
    };
    let w = view.window;
    // A window being torn down takes no free-form sends: it reads as closed, with its reason.
    let open = w.open && w.closing.is_none();
    WindowOut {
        contact_id: contact_id.to_owned(),
        status: if open { "open" } else { "closed" }.to_owned(),
        open,
        channel: Some(w.channel),
        opened_at: if open { w.opened_at.map(rfc3339) } else { None },
        expires_at: if open { w.expires_at.map(rfc3339) } else { None },
        billing_session_ends_at: w.billing_session_ends_at.map(rfc3339),
        close_reason: if open {
            None
        } else {
            w.closing.or(w.last_close).map(|r| r.as_str().to_owned())
        },
        in_session: w.in_session,
        last_inbound_at: w.last_inbound_at.map(rfc3339),
    }
}

impl App {
    /// The window of an existing contact id of the workspace.
    pub(crate) async fn window_of(
        &self,
        ws: &WorkspaceId,
        contact_id: &str,
    ) -> Result<WindowOut, ApiError> {
        let mut window = window_out(contact_id, self.session_view(ws, contact_id).await?);
        if window.open
            && let Some(reason) = self.ended_abnormally(ws, contact_id).await?
        {
            // The run was terminated, failed or timed out: its last state still says open,
            // but nothing runs to honour it (the reconciler settles it and emits
            // `conversation.ended`).
            window = WindowOut {
                status: "closed".to_owned(),
                open: false,
                opened_at: None,
                expires_at: None,
                close_reason: Some(reason.to_owned()),
                in_session: false,
                ..window
            };
        }
        Ok(window)
    }

    /// Why the contact's latest session run ended without ending its window, if it did:
    /// `TERMINATED`, `FAILED`, `TIMED_OUT` or `CANCELED`.
    async fn ended_abnormally(
        &self,
        ws: &WorkspaceId,
        contact_id: &str,
    ) -> Result<Option<&'static str>, ApiError> {
        Ok(self.gateway().session_abnormal_end(ws.as_str(), contact_id).await?)
    }

    /// `GET /v1/windows/{contact}`: `contact` is an E.164 number, an e-mail address or a
    /// contact id. A contact whose session ended, or never ran, reads as closed (with the last
    /// close reason while Temporal keeps the finished run). A contact the workspace does not
    /// have is 404.
    pub async fn window(&self, ws: &WorkspaceId, contact: &str) -> Result<WindowOut, ApiError> {
        let found = self
            .find_contact(ws, contact, "contact")
            .await?
            .ok_or_else(|| ApiError::not_found(format!("contact {contact} not found")))?;
        self.window_of(ws, &found.id).await
    }

    /// `POST /v1/windows/{contact}/close`: closes the window (`EXPLICIT`). Idempotent: closing
    /// a closed window, or a contact with no session, answers the closed window. Waits (up to
    /// [`super::AppSettings::close_wait`]) until the session reports the close, so a send right
    /// after the answer is refused.
    pub async fn close_window(
        &self,
        ws: &WorkspaceId,
        contact: &str,
    ) -> Result<WindowOut, ApiError> {
        let found = self
            .find_contact(ws, contact, "contact")
            .await?
            .ok_or_else(|| ApiError::not_found(format!("contact {contact} not found")))?;
        let before = self.session_view(ws, &found.id).await?;
        if !before.as_ref().is_some_and(|v| v.window.open && v.window.closing.is_none()) {
            return Ok(window_out(&found.id, before));
        }
        self.gateway().close(ws.as_str(), &found.id).await?;
        let deadline = tokio::time::Instant::now() + self.settings().close_wait;
        loop {
            let view = window_out(&found.id, self.session_view(ws, &found.id).await?);
            if !view.open || tokio::time::Instant::now() >= deadline {
                return Ok(view);
            }
            tokio::time::sleep(CLOSE_POLL).await;
        }
    }
}
