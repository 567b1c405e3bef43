//! Script injection into the console: markup is put into every value a page renders — the
//! organization's name, invited addresses, a piece's title, audience, text, tags and review
//! notes, a session's user agent, a passkey's name, and what pages echo from their address
//! (filters, searches, links' tokens, where to go after signing in) — and every page is then
//! read as a browser's tokenizer reads it: no element or attribute may come from the data, and
//! each value must still be there, as text.

use serde_json::json;

use crate::TestApp;

/// Markup of each kind: an element, a way out of a double-quoted attribute, a way out of a
/// single-quoted one, and a way out of the page's `<title>` and `<textarea>`. `{}` names where
/// it went, so that each page can be shown to render the value it was given.
const PAYLOAD: &str = r#"{}<script>x</script>"><img src=x onerror=x>' onclick='x'</title></textarea><svg onload=x>"#;

fn payload(place: &str) -> String {
    PAYLOAD.replace("{}", place)
}

/// An element or attribute as a browser's HTML tokenizer sees it.
#[derive(Debug)]
struct Tag {
    name: String,
    attributes: Vec<(String, String)>,
}

/// What a page is made of: its start tags, and its text (character references decoded), the
/// text of attribute values included.
struct Parsed {
    tags: Vec<Tag>,
    text: String,
}

fn decode(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('&') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        let Some(end) = rest.find(';').filter(|e| *e <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Tokenizes HTML as the HTML standard does, for what a page can contain: start and end tags
/// with double-, single- or unquoted attribute values, comments, the doctype, and the
/// elements whose content is text up to their own end tag (`script`, `style`, `title`,
/// `textarea`).
fn parse(html: &str) -> Parsed {
    let bytes = html.as_bytes();
    let mut tags = Vec::new();
    let mut text = String::new();
    let mut i = 0;
    let mut plain_from = 0;
    while i < bytes.len() {
        if bytes[i] != b'<' {
            i += 1;
            continue;
        }
        let next = bytes.get(i + 1).copied().unwrap_or(b' ');
        if html[i..].starts_with("<!--") {
            text.push_str(&decode(&html[plain_from..i]));
            i = html[i..].find("-->").map_or(bytes.len(), |e| i + e + 3);
            plain_from = i;
            continue;
        }
        if next == b'!' || next == b'/' && bytes.get(i + 2).is_some_and(u8::is_ascii_alphabetic) {
            text.push_str(&decode(&html[plain_from..i]));
            i = html[i..].find('>').map_or(bytes.len(), |e| i + e + 1);
            plain_from = i;
            continue;
        }
        if !next.is_ascii_alphabetic() {
            i += 1;
            continue;
        }
        text.push_str(&decode(&html[plain_from..i]));
        i += 1;
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'/' && bytes[i] != b'>' {
            i += 1;
        }
        let name = html[start..i].to_ascii_lowercase();
        let mut attributes = Vec::new();
        loop {
            while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
                i += 1;
            }
            if i >= bytes.len() || bytes[i] == b'>' {
                i += 1;
                break;
            }
            let start = i;
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"/>=".contains(&bytes[i]) {
                i += 1;
            }
            let attribute = html[start..i].to_ascii_lowercase();
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            let mut value = String::new();
            if bytes.get(i) == Some(&b'=') {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                match bytes.get(i) {
                    Some(&quote) if quote == b'"' || quote == b'\'' => {
                        let end = html[i + 1..].find(quote as char).map_or(bytes.len(), |e| i + 1 + e);
                        value = decode(&html[i + 1..end]);
                        i = end + 1;
                    }
                    _ => {
                        let start = i;
                        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                            i += 1;
                        }
                        value = decode(&html[start..i]);
                    }
                }
            }
            text.push_str(&value);
            text.push('\n');
            attributes.push((attribute, value));
        }
        if ["script", "style", "title", "textarea"].contains(&name.as_str()) {
            let close = format!("</{name}");
            let end = html[i.min(bytes.len())..].to_ascii_lowercase().find(&close).map_or(bytes.len(), |e| i + e);
            text.push_str(&decode(&html[i.min(bytes.len())..end]));
            i = end;
        }
        plain_from = i.min(bytes.len());
        tags.push(Tag { name, attributes });
    }
    text.push_str(&decode(&html[plain_from.min(bytes.len())..]));
    Parsed { tags, text }
}

/// Nothing in `html` is markup of the data's, and each of `shown` is in its text whole.
fn assert_inert(page: &str, html: &str, shown: &[&str]) {
    let parsed = parse(html);
    assert!(parsed.tags.iter().any(|t| t.name == "main"), "{page} is a console page: {html}");
    for tag in &parsed.tags {
        assert!(!["img", "svg"].contains(&tag.name.as_str()), "{page}: a <{}> from the data: {tag:?}", tag.name);
        if tag.name == "script" {
            let src = tag.attributes.iter().find(|(n, _)| n == "src").map(|(_, v)| v.as_str());
            assert!(matches!(src, Some("/console.js" | "/passkey.js")), "{page}: a script of the data's: {tag:?}");
        }
        for (name, value) in &tag.attributes {
            assert!(!name.starts_with("on"), "{page}: an event handler from the data: {tag:?}");
            assert!(!name.contains(['\'', '"', '<', '(']), "{page}: an attribute made of the data: {tag:?}");
            let lowered = value.trim().to_ascii_lowercase();
            assert!(!lowered.starts_with("javascript:"), "{page}: a script address in {name}: {tag:?}");
        }
    }
    for place in shown {
        assert!(parsed.text.contains(&payload(place)), "{page} shows {place} whole, as text: {html}");
    }
}

/// The console page at `path` as the browser with `cookie` gets it.
async fn page(app: &TestApp, cookie: &str, path: &str) -> String {
    let reply = app.http.get(format!("{}{path}", app.base)).header("cookie", cookie).send().await.unwrap();
    // A refusal is a page too (a filter the API refuses shows its problem).
    assert!(reply.status().as_u16() < 500, "{path}: {}", reply.status());
    reply.text().await.unwrap()
}

#[test]
fn the_tokenizer_finds_markup_where_a_browser_would() {
    let raw = format!(
        "<!DOCTYPE html><html><head><title>{}</title></head><body><main><p>{}</p></main></body></html>",
        payload("a"),
        payload("b")
    );
    let parsed = parse(&raw);
    let names: Vec<&str> = parsed.tags.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"script") && names.contains(&"img") && names.contains(&"svg"), "{names:?}");
    let quoted = format!("<main><input value='{}'></main>", payload("c"));
    assert!(parse(&quoted).tags.iter().any(|t| t.attributes.iter().any(|(n, _)| n == "onclick")));
    let escaped = payload("d").replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;");
    let safe = format!("<main><p>{escaped}</p><input value=\"{escaped}\"><textarea>{escaped}</textarea></main>");
    assert_inert("escaped", &safe, &["d"]);
}

#[tokio::test]
async fn markup_in_every_value_a_console_page_shows_comes_out_as_text() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;

    let renamed = app.call_as("patch", &org.admin, "/v1/orgs/acme", json!({ "name": payload("org name") })).await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    // Addresses cannot hold `<`, `>` or `"`; a quote, a backtick and `&` are theirs to keep.
    let odd_address = "o'onfocus=alert`1`&x@acme.example";
    let invited =
        app.post_as(&org.admin, "/v1/orgs/acme/invitations", json!({ "email": odd_address, "role": "VIEWER" })).await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    let marked = app
        .post_as(
            &org.admin,
            "/v1/orgs/acme/invitations",
            json!({ "email": payload("x@acme.example"), "role": "VIEWER" }),
        )
        .await;
    assert_eq!(marked.status, 422, "markup is no address: {}", marked.body);

    let draft = |version: &str| {
        json!({
            "title": payload(&format!("title {version}")),
            "channel": "email",
            "audience": payload(&format!("audience {version}")),
            "body": format!("{}\n{}", payload(&format!("body {version}")), payload("body line")),
            "tags": ["flu"],
        })
    };
    let created = app.post_as(&org.creator, "/v1/orgs/acme/content", draft("1")).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let item = format!("/v1/orgs/acme/content/{id}");
    // Tags are folded to letters, digits and hyphens: markup is refused, not stored.
    let mut tagged = draft("1");
    tagged["tags"] = json!([payload("tag")]);
    let refused = app.post_as(&org.creator, "/v1/orgs/acme/content", tagged).await;
    assert_eq!((refused.status, refused.body["field"].as_str()), (422, Some("tags")), "{}", refused.body);

    let etag = app.get_as(&org.creator, &item).await.headers["etag"].to_str().unwrap().to_owned();
    let edit = app
        .http
        .patch(format!("{}{item}", app.base))
        .bearer_auth(&org.creator)
        .header("if-match", etag)
        .json(&draft("2"));
    let edited = app.send(edit).await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let sha = edited.body["version"]["sha256"].clone();
    let submitted = app.post_as(&org.creator, &format!("{item}/submit"), json!({ "sha256": sha })).await;
    assert_eq!(submitted.status, 200, "{}", submitted.body);
    for (route, who) in [("comments", &org.reviewer), ("request-changes", &org.admin)] {
        let noted =
            app.post_as(who, &format!("{item}/{route}"), json!({ "sha256": sha, "note": payload(route) })).await;
        assert_eq!(noted.status, 200, "{route}: {}", noted.body);
    }

    // A passkey named in markup (adding it signs out the ADMIN's other sessions), then a
    // session whose browser names itself in markup.
    let (_, with_passkey) = app.add_passkey(&org.admin, &payload("passkey")).await;
    let admin = format!("__Host-mos_session={with_passkey}");
    let signed_in = app
        .send(
            app.http
                .post(format!("{}/v1/auth/login", app.base))
                .header("user-agent", payload("user agent"))
                .json(&json!({ "email": "admin@acme.example", "password": crate::PASSWORD })),
        )
        .await;
    assert_eq!(signed_in.status, 200, "{}", signed_in.body);

    let query = url_component(&payload("query"));
    let content = format!("/orgs/acme/content/{id}");
    let pages: Vec<(String, &str, &[&str])> = vec![
        ("/orgs".into(), &admin, &["org name"]),
        ("/orgs/acme".into(), &admin, &["org name"]),
        ("/orgs/acme/content".into(), &admin, &["title 2"]),
        (format!("/orgs/acme/content?q={query}"), &admin, &["query"]),
        (content.clone(), &admin, &["title 2", "audience 2", "body 2", "comments", "request-changes"]),
        (
            format!("{content}/diff?from=1&to=2"),
            &admin,
            &["title 1", "title 2", "audience 1", "audience 2", "body 1", "body 2"],
        ),
        (format!("/orgs/acme/audit?action={query}&resource_type={query}"), &admin, &["query"]),
        (format!("/orgs/acme/audit?actor={query}&resource_id={query}"), &admin, &[]),
        ("/account".into(), &admin, &["user agent", "passkey"]),
        (format!("/accept-invitation?token={query}"), &admin, &["query"]),
        (format!("/accept-invitation?token={query}"), "", &[]),
        (format!("/sign-in?next={query}"), "", &[]),
        ("/sign-in?next=javascript:alert(1)".into(), "", &[]),
        (format!("/reset-password?token={query}"), "", &["query"]),
        (format!("/verify-email?token={query}"), "", &["query"]),
    ];
    for (path, cookie, shown) in &pages {
        assert_inert(path, &page(&app, cookie, path).await, shown);
    }
    let html = page(&app, &admin, "/orgs/acme").await;
    assert!(parse(&html).text.contains(odd_address), "the odd address is shown as it is: {html}");
}

/// `value` as one component of a URL.
fn url_component(value: &str) -> String {
    value
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

#[tokio::test]
async fn markup_in_contacts_attributes_purposes_and_notices_comes_out_as_text() {
    let app = TestApp::spawn().await;
    let org = app.org_with_every_role("acme").await;
    let purpose = app.post_as(&org.admin, "/v1/orgs/acme/purposes", json!({ "name": payload("purpose") })).await;
    assert_eq!(purpose.status, 201, "{}", purpose.body);
    let purpose = purpose.body["id"].as_str().unwrap().to_owned();
    let notice = app
        .post_as(&org.admin, &format!("/v1/orgs/acme/purposes/{purpose}/notices"), json!({ "text": payload("notice") }))
        .await;
    assert_eq!(notice.status, 201, "{}", notice.body);
    let defined = app
        .post_as(&org.admin, "/v1/orgs/acme/attributes", json!({ "name": "note", "kind": "text", "max_length": 500 }))
        .await;
    assert_eq!(defined.status, 201, "{}", defined.body);
    let created = app
        .post_as(
            &org.creator,
            "/v1/orgs/acme/contacts",
            json!({ "address": "ana@example.com", "name": payload("name"), "attributes": { "note": payload("attribute") } }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    // Tags are folded to letters, digits and hyphens: markup is refused, not stored.
    let tagged = app
        .post_as(
            &org.creator,
            "/v1/orgs/acme/contacts",
            json!({ "address": "bo@example.com", "tags": [payload("tag")] }),
        )
        .await;
    assert_eq!((tagged.status, tagged.body["field"].as_str()), (422, Some("tags")), "{}", tagged.body);

    let admin = format!("__Host-mos_session={}", org.admin);
    let query = url_component(&payload("query"));
    let pages: Vec<(String, &[&str])> = vec![
        ("/orgs/acme/audience".into(), &["purpose"]),
        ("/orgs/acme/contacts".into(), &["name"]),
        (format!("/orgs/acme/contacts?q={query}&tag={query}"), &["query"]),
        (format!("/orgs/acme/contacts/{id}"), &["name", "attribute"]),
        ("/orgs/acme/purposes".into(), &["purpose"]),
        (format!("/orgs/acme/purposes/{purpose}"), &["purpose", "notice"]),
        ("/orgs/acme/suppressions".into(), &[]),
    ];
    for (path, shown) in &pages {
        assert_inert(path, &page(&app, &admin, path).await, shown);
    }
}
