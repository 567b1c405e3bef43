/// SHA-256 of a secret token (session, emailed link, challenge, invitation, recovery code):
/// what the database stores and looks up by. A stolen table yields nothing usable, and with
/// 256-bit random tokens a fast hash is enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}
