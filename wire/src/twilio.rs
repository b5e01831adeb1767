//! Twilio's webhooks: `application/x-www-form-urlencoded` posts that are either an incoming
//! message (`From`, `To`, `Body`, `MessageSid`) or a status callback (`MessageStatus` and no
//! `Body`). WhatsApp-over-Twilio addresses carry a `whatsapp:` prefix, which is dropped.

/// A decoded post: its parameters, in the order sent (the signature covers all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Form {
    /// Name and value of every parameter.
    pub params: Vec<(String, String)>,
}

/// What a post says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A contact's message to the business number `to`.
    Message {
        /// `MessageSid` (or `SmsSid`); empty when Twilio sent neither.
        sid: &'a str,
        /// The contact.
        from: &'a str,
        /// The business number.
        to: &'a str,
        /// The text.
        body: &'a str,
    },
    /// A status of a message the business number `from` sent.
    Status {
        /// `MessageSid` (or `SmsSid`); empty when Twilio sent neither.
        sid: &'a str,
        /// The business number.
        from: &'a str,
        /// `MessageStatus` (or `SmsStatus`).
        status: &'a str,
        /// `ErrorCode`, if non-empty.
        error_code: Option<&'a str>,
        /// `ErrorMessage`, if non-empty.
        error_message: Option<&'a str>,
    },
}

impl Form {
    /// Decodes a body (any bytes decode; invalid UTF-8 is replaced).
    pub fn parse(body: &[u8]) -> Form {
        Form { params: form_urlencoded::parse(body).into_owned().collect() }
    }

    /// The first value of `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// A message or a status.
    pub fn event(&self) -> Event<'_> {
        let address = |name: &str| {
            let v = self.param(name).unwrap_or_default();
            v.strip_prefix("whatsapp:").unwrap_or(v)
        };
        let sid = self.param("MessageSid").or(self.param("SmsSid")).unwrap_or_default();
        let status = self.param("MessageStatus").or(self.param("SmsStatus"));
        match (status, self.param("Body")) {
            (Some(status), None) => {
                let text = |name: &str| self.param(name).filter(|v| !v.is_empty());
                Event::Status {
                    sid,
                    from: address("From"),
                    status,
                    error_code: text("ErrorCode"),
                    error_message: text("ErrorMessage"),
                }
            }
            (_, body) => Event::Message {
                sid,
                from: address("From"),
                to: address("To"),
                body: body.unwrap_or_default(),
            },
        }
    }
}

impl Event<'_> {
    /// The business number the post is for: it names the channel, whose token signed it.
    pub fn business_number(&self) -> &str {
        match self {
            Event::Message { to, .. } => to,
            Event::Status { from, .. } => from,
        }
    }

    /// `MessageSid`.
    pub fn sid(&self) -> &str {
        match self {
            Event::Message { sid, .. } | Event::Status { sid, .. } => sid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_and_a_status_are_told_apart() {
        let m = Form::parse(
            b"From=whatsapp%3A%2B14155550188&To=%2B12125550121&Body=STOP&MessageSid=SM1",
        );
        assert_eq!(
            m.event(),
            Event::Message { sid: "SM1", from: "+14155550188", to: "+12125550121", body: "STOP" }
        );
        assert_eq!(m.event().business_number(), "+12125550121");
        let s = Form::parse(
            b"MessageStatus=undelivered&MessageSid=SM2&From=%2B12125550121&ErrorCode=30003&ErrorMessage=",
        );
        assert_eq!(
            s.event(),
            Event::Status {
                sid: "SM2",
                from: "+12125550121",
                status: "undelivered",
                error_code: Some("30003"),
                error_message: None,
            }
        );
        assert_eq!(s.event().business_number(), "+12125550121");
    }
}
