use std::fmt;
use std::str::FromStr;

/// What a member may do inside one organization.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Admin,
    Reviewer,
    Creator,
    Viewer,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role must be one of ADMIN, REVIEWER, CREATOR, VIEWER, got {0:?}")]
pub struct RoleError(String);

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Reviewer, Role::Creator, Role::Viewer];

    /// The label shared with the database enum `app.role`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Reviewer => "REVIEWER",
            Role::Creator => "CREATOR",
            Role::Viewer => "VIEWER",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = RoleError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL.into_iter().find(|r| r.as_str() == s).ok_or_else(|| RoleError(s.chars().take(32).collect()))
    }
}

/// For row structs, which read the database enum as text.
impl TryFrom<String> for Role {
    type Error = RoleError;
    fn try_from(text: String) -> Result<Self, RoleError> {
        text.parse()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_role_parses_from_its_own_label() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert!("admin".parse::<Role>().is_err());
    }
}
