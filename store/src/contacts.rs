//! Contacts, keyed per workspace by E.164 phone number and by e-mail address.

use convo_domain::{Channel, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::{Row, any::AnyRow};

use super::{
    Result, Store, StoreError,
    error::{is_foreign_key_violation, is_unique_violation},
    new_id, now_ms, timestamp,
};

/// A person a workspace talks to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// Opaque id (`ct_...`).
    pub id: String,
    /// The workspace.
    pub workspace_id: String,
    /// E.164 (`+4915112345678`), if known.
    pub phone: Option<String>,
    /// Lower-cased e-mail address, if known.
    pub email: Option<String>,
    /// Display name, if known.
    pub name: Option<String>,
    /// When the contact was created.
    pub created_at: Timestamp,
}

impl Contact {
    /// Where the contact is reached on `channel`: the e-mail address for e-mail, the E.164
    /// number for every phone-based channel (Messenger and Instagram users are keyed by the
    /// number the platform matched them to).
    pub fn address_on(&self, channel: Channel) -> Option<String> {
        match channel {
            Channel::Email => self.email.clone(),
            _ => self.phone.clone(),
        }
    }
}

/// How to find a contact: by phone, else by e-mail. At least one must be given; both are
/// normalised ([`normalize_phone`], [`normalize_email`]) before use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactLookup {
    /// A phone number in E.164 form, with or without spaces, dashes, dots or parentheses;
    /// a leading `00` counts as `+`.
    pub phone: Option<String>,
    /// An e-mail address.
    pub email: Option<String>,
    /// The name to store if the contact is created (or had none).
    pub name: Option<String>,
}

/// Normalises a phone number to E.164 and checks that it is a valid number of its country,
/// by libphonenumber's metadata (the `phonenumber` crate): `+1 555 1000` has the right shape
/// but no country has it. Separators people type (space, `-`, `.`, `(`, `)`) are dropped and a
/// leading `00` becomes `+`; letters (`+1-800-FLOWERS`), extensions and `tel:` URIs are
/// refused. This is the check for numbers a business gives convo to reach; a number a carrier
/// delivered a message from is held to [`normalize_delivered_phone`].
pub fn normalize_phone(input: &str) -> Result<String> {
    phone(input, true)
}

/// Normalises the number a provider reports a contact's message from, as [`normalize_phone`]
/// but without the validity check: the carrier has just delivered from it, and a number
/// range newer than the metadata must not lose the contact's message. It must still parse as
/// a number of a known country code.
pub fn normalize_delivered_phone(input: &str) -> Result<String> {
    phone(input, false)
}

fn phone(input: &str, valid: bool) -> Result<String> {
    let bad = |message: &str| StoreError::validation("phone", format!("{message}: {input:?}"));
    let compact: String =
        input.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')' | '\u{a0}')).collect();
    let digits = if let Some(rest) = compact.strip_prefix('+') {
        rest
    } else if let Some(rest) = compact.strip_prefix("00") {
        rest
    } else {
        return Err(bad("must start with + and a country code"));
    };
    // libphonenumber would read letters as keypad digits and drop an extension: neither is a
    // number convo can message.
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("may contain only digits after +"));
    }
    if digits.starts_with('0') {
        return Err(bad("a country code never starts with 0"));
    }
    // The shortest numbers in use (small island states) have 7 digits with the country code.
    if !(7..=15).contains(&digits.len()) {
        return Err(bad("must have 7 to 15 digits"));
    }
    let number = phonenumber::parse(None, format!("+{digits}"))
        .map_err(|_| bad("is not a number of any country code"))?;
    if valid && !phonenumber::is_valid(&number) {
        let country = number.country().code();
        return Err(bad(&format!("is not a valid number for country code +{country}")));
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// Normalises an e-mail address for identity matching: trimmed and lower-cased as a whole
/// (RFC 5321 lets the local part be case-sensitive, but no mainstream mailbox provider treats
/// it so, and matching case-insensitively avoids duplicate contacts), and checked by the
/// `email_address` crate against RFC 5321/5322: a bare address (no display name, no
/// `[domain literal]`) whose domain has a top-level domain, at most 254 bytes in all.
pub fn normalize_email(input: &str) -> Result<String> {
    let bad = |message: &str| StoreError::validation("email", format!("{message}: {input:?}"));
    let email = input.trim().to_lowercase();
    if email.len() > 254 {
        return Err(bad("must be at most 254 bytes"));
    }
    let options = email_address::Options::default()
        .with_required_tld()
        .without_display_text()
        .without_domain_literal();
    let parsed = email_address::EmailAddress::parse_with_options(&email, options)
        .map_err(|e| bad(&format!("is not an e-mail address ({e})")))?;
    Ok(parsed.email())
}

fn normalize_name(name: Option<&str>) -> Result<Option<String>> {
    match name.map(str::trim) {
        None | Some("") => Ok(None),
        Some(n) if n.chars().count() > 200 => {
            Err(StoreError::validation("name", "must be at most 200 characters"))
        }
        Some(n) => Ok(Some(n.to_owned())),
    }
}

fn contact_from_row(row: &AnyRow) -> Result<Contact> {
    Ok(Contact {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        phone: row.try_get("phone")?,
        email: row.try_get("email")?,
        name: row.try_get("name")?,
        created_at: timestamp(row.try_get("created_at")?),
    })
}

const CONTACT_COLUMNS: &str = "id, workspace_id, phone, email, name, created_at";

/// A create can lose a race to a concurrent create of the same phone or e-mail; the loser
/// finds the winner's row on its next lookup. More rounds than that mean something else is
/// wrong.
const CREATE_ATTEMPTS: usize = 4;

impl Store {
    /// Finds the contact with the lookup's phone, else its e-mail, or creates one with both.
    /// Returns the contact and whether it was created. Safe to call concurrently: a unique index
    /// per (workspace, phone) and (workspace, email) makes a racing create fail, and the loser
    /// returns the winner's contact.
    pub async fn find_or_create_contact(
        &self,
        workspace_id: &str,
        lookup: ContactLookup,
    ) -> Result<(Contact, bool)> {
        self.find_or_create(workspace_id, lookup, normalize_phone).await
    }

    /// [`Store::find_or_create_contact`] for the sender of a message a provider delivered:
    /// its number is held to [`normalize_delivered_phone`], so a number newer than the phone
    /// metadata still reaches its session.
    pub async fn find_or_create_sender(
        &self,
        workspace_id: &str,
        lookup: ContactLookup,
    ) -> Result<(Contact, bool)> {
        self.find_or_create(workspace_id, lookup, normalize_delivered_phone).await
    }

    async fn find_or_create(
        &self,
        workspace_id: &str,
        lookup: ContactLookup,
        phone_check: fn(&str) -> Result<String>,
    ) -> Result<(Contact, bool)> {
        let phone = lookup.phone.as_deref().map(phone_check).transpose()?;
        let email = lookup.email.as_deref().map(normalize_email).transpose()?;
        let name = normalize_name(lookup.name.as_deref())?;
        if phone.is_none() && email.is_none() {
            return Err(StoreError::validation("contact", "a phone or an email is required"));
        }
        for _ in 0..CREATE_ATTEMPTS {
            if let Some(found) =
                self.find_contact(workspace_id, phone.as_deref(), email.as_deref()).await?
            {
                if found.name.is_none() && name.is_some() {
                    sqlx::query(
                        "UPDATE contacts SET name = $1, updated_at = $2 WHERE id = $3 AND name IS NULL",
                    )
                    .bind(name.as_deref())
                    .bind(now_ms())
                    .bind(&found.id)
                    .execute(self.pool())
                    .await?;
                    return Ok((self.contact(workspace_id, &found.id).await?, false));
                }
                return Ok((found, false));
            }
            let id = new_id("ct");
            let now = now_ms();
            let inserted = sqlx::query(
                "INSERT INTO contacts (id, workspace_id, phone, email, name, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&id)
            .bind(workspace_id)
            .bind(phone.as_deref())
            .bind(email.as_deref())
            .bind(name.as_deref())
            .bind(now)
            .execute(self.pool())
            .await;
            match inserted {
                Ok(_) => return Ok((self.contact(workspace_id, &id).await?, true)),
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) if is_foreign_key_violation(&e) => {
                    return Err(StoreError::not_found("workspace", workspace_id));
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::conflict(format!(
            "contact in workspace {workspace_id} kept changing while it was being created"
        )))
    }

    async fn find_contact(
        &self,
        workspace_id: &str,
        phone: Option<&str>,
        email: Option<&str>,
    ) -> Result<Option<Contact>> {
        for (column, value) in [("phone", phone), ("email", email)] {
            let Some(value) = value else { continue };
            let row = sqlx::query(&format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE workspace_id = $1 AND {column} = $2"
            ))
            .bind(workspace_id)
            .bind(value)
            .fetch_optional(self.pool())
            .await?;
            if let Some(row) = row {
                return contact_from_row(&row).map(Some);
            }
        }
        Ok(None)
    }

    /// The contact `id` of the workspace.
    pub async fn contact(&self, workspace_id: &str, id: &str) -> Result<Contact> {
        let row = sqlx::query(&format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE workspace_id = $1 AND id = $2"
        ))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .ok_or_else(|| StoreError::not_found("contact", id))?;
        contact_from_row(&row)
    }
}
