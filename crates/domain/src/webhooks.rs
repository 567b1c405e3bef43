//! Outgoing webhooks (docs/webhooks.md): the events an endpoint can subscribe to.

/// What an event reports. The names are stored and sent, so a type is never renamed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventType {
    /// The relay accepted a campaign's message.
    MessageSent,
    /// A delivery report came back.
    MessageDelivered,
    /// Refused at hand-over, or a bounce report came back.
    MessageBounced,
    /// The recipient marked the message as spam (an abuse report).
    MessageComplained,
    /// A tracked link of the message was followed.
    MessageClicked,
    /// The person revoked a purpose through an unsubscribe link or the preference centre.
    ContactUnsubscribed,
    /// Any event of the consent ledger.
    ConsentChanged,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::MessageSent,
        EventType::MessageDelivered,
        EventType::MessageBounced,
        EventType::MessageComplained,
        EventType::MessageClicked,
        EventType::ContactUnsubscribed,
        EventType::ConsentChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::MessageSent => "message.sent",
            EventType::MessageDelivered => "message.delivered",
            EventType::MessageBounced => "message.bounced",
            EventType::MessageComplained => "message.complained",
            EventType::MessageClicked => "message.clicked",
            EventType::ContactUnsubscribed => "contact.unsubscribed",
            EventType::ConsentChanged => "consent.changed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_reads_back_from_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("message.opened"), None);
    }
}
