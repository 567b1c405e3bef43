use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

/// An identifier that is not a UUID, or not the UUID version the system hands out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    #[error("{kind} must be a UUID, got {input:?}")]
    NotUuid { kind: &'static str, input: String },
    #[error("{kind} must be a version 7 UUID")]
    NotV7 { kind: &'static str },
}

macro_rules! uuid_v7_id {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id. Version 7 keeps index inserts local and, unlike a
            /// shared sequence, says nothing about how many rows other tenants have.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn parse(input: &str) -> Result<Self, IdError> {
                let uuid = Uuid::try_parse(input.trim()).map_err(|_| IdError::NotUuid {
                    kind: $kind,
                    input: input.chars().take(64).collect(),
                })?;
                Self::from_uuid(uuid)
            }

            pub fn from_uuid(uuid: Uuid) -> Result<Self, IdError> {
                if uuid.get_version_num() == 7 {
                    Ok(Self(uuid))
                } else {
                    Err(IdError::NotV7 { kind: $kind })
                }
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        /// For row structs: a stored id that is not one this system hands out is an error.
        impl TryFrom<Uuid> for $name {
            type Error = IdError;
            fn try_from(uuid: Uuid) -> Result<Self, IdError> {
                Self::from_uuid(uuid)
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Hyphenated lowercase: the only form that reaches SQL literals.
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::parse(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_v7_id!(
    /// An organization: the tenant that owns its data.
    OrgId,
    "organization id"
);
uuid_v7_id!(
    /// A person who can sign in; belongs to organizations through memberships.
    UserId,
    "user id"
);
uuid_v7_id!(
    /// One signed-in device or client of a user.
    SessionId,
    "session id"
);
uuid_v7_id!(
    /// An invitation to join an organization.
    InvitationId,
    "invitation id"
);
uuid_v7_id!(
    /// A piece of marketing content under review.
    ContentId,
    "content id"
);
uuid_v7_id!(
    /// A person an organization may write to: one of its contacts.
    ContactId,
    "contact id"
);
uuid_v7_id!(
    /// A custom attribute an organization defines for its contacts.
    AttributeId,
    "attribute id"
);
uuid_v7_id!(
    /// What an organization asks consent for (a newsletter, product information).
    PurposeId,
    "purpose id"
);
uuid_v7_id!(
    /// One event of the consent ledger.
    ConsentEventId,
    "consent event id"
);
uuid_v7_id!(
    /// A background job (an import, later a send) of one organization.
    JobId,
    "job id"
);
uuid_v7_id!(
    /// An upload of contacts as CSV, and the import that reads it.
    ImportId,
    "import id"
);
uuid_v7_id!(
    /// A saved segment of an organization's contacts, with its versions.
    SegmentId,
    "segment id"
);
uuid_v7_id!(
    /// Who an organization's messages come from: a from address, a postal address, DKIM keys.
    SenderId,
    "sender id"
);
uuid_v7_id!(
    /// One DKIM key pair of a sender.
    DkimKeyId,
    "DKIM key id"
);
uuid_v7_id!(
    /// An endpoint an organization subscribed to its events.
    WebhookId,
    "webhook id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_are_version_7_and_round_trip_through_text() {
        let id = OrgId::new();
        assert_eq!(id.as_uuid().get_version_num(), 7);
        assert_eq!(OrgId::parse(&id.to_string()), Ok(id));
    }

    #[test]
    fn text_that_is_not_a_uuid_is_rejected_with_its_kind() {
        let err = OrgId::parse("x' or 1=1 --").unwrap_err();
        assert_eq!(err.to_string(), "organization id must be a UUID, got \"x' or 1=1 --\"");
    }

    #[test]
    fn uuids_of_other_versions_are_rejected() {
        let v4 = "2f1b8f0e-52d4-4c8e-9a51-8c3d4e1f2a3b";
        assert_eq!(UserId::parse(v4), Err(IdError::NotV7 { kind: "user id" }));
    }
}
