//! The operations of the product, one module per feature: typed functions that take what a
//! request established (the session's [`crate::extract::Authenticated`], a member's
//! [`crate::access::Authorized`]) and return typed values. The JSON API (`api/`) and the
//! console (`console/`) are adapters over the same functions; neither calls the other.

pub mod account;
pub mod audiences;
pub mod audit;
pub mod breaker;
pub mod campaigns;
pub mod clicks;
pub mod content;
pub mod erasure;
pub mod imports;
pub mod orgs;
pub mod passkey_registration;
pub mod passkeys;
pub mod registration;
pub mod segments;
pub mod senders;
pub mod session;
pub mod signin;
pub mod signup;
pub mod unsubscribe;
pub mod webhooks;

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// The text of every source file of the folder `dir` of this crate.
    fn sources(dir: &str) -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(dir);
        let mut found = Vec::new();
        let mut pending = vec![root];
        while let Some(dir) = pending.pop() {
            for entry in std::fs::read_dir(&dir).unwrap().map(Result::unwrap) {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    found.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
                }
            }
        }
        found
    }

    #[test]
    fn the_doors_call_the_operations_and_never_each_other() {
        let rules: [(&str, &[&str]); 3] = [
            ("app", &["crate::api", "crate::console"]),
            ("api", &["crate::console"]),
            ("console", &["crate::api", "oneshot", "serde_json::Value"]),
        ];
        for (dir, forbidden) in rules {
            let files = sources(dir);
            assert!(!files.is_empty(), "{dir}");
            for (path, text) in files {
                // Unit tests may reach anything; the code they test may not.
                let code = text.split("#[cfg(test)]").next().unwrap_or_default();
                for word in forbidden {
                    assert!(!code.contains(word), "{path} uses {word}");
                }
            }
        }
    }
}
