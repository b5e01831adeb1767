//! `GET /v1/contacts/{contact}`: a contact as convo knows it (its addresses, name and consent),
//! and the same block in the conversation view.

use convo_domain::Consent;
use convo_store::Contact;

use super::{App, WorkspaceId, rfc3339, types::ContactOut};
use crate::error::ApiError;

impl App {
    /// `GET /v1/contacts/{contact}`: by id, E.164 or e-mail address. Another workspace's
    /// contact, or none, is 404.
    pub async fn contact(&self, ws: &WorkspaceId, reference: &str) -> Result<ContactOut, ApiError> {
        let contact = self
            .find_contact(ws, reference, "contact")
            .await?
            .ok_or_else(|| ApiError::not_found(format!("contact {reference} not found")))?;
        self.contact_out(ws, &contact).await
    }

    /// The API's view of `contact`, with its consent from the store.
    pub(crate) async fn contact_out(
        &self,
        ws: &WorkspaceId,
        contact: &Contact,
    ) -> Result<ContactOut, ApiError> {
        let (consent, at) = match self.store().consent(ws.as_str(), &contact.id).await? {
            Consent::Unknown => ("unknown", None),
            Consent::OptedIn { at } => ("opted_in", Some(at)),
            Consent::OptedOut { at } => ("opted_out", Some(at)),
        };
        Ok(ContactOut {
            contact_id: contact.id.clone(),
            phone: contact.phone.clone(),
            email: contact.email.clone(),
            name: contact.name.clone(),
            consent: consent.to_owned(),
            consent_changed_at: at.map(rfc3339),
            created_at: rfc3339(contact.created_at),
        })
    }
}
