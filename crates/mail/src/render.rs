//! Approved content and its template, rendered for one recipient: the HTML part, the text part and
//! the subject, with the elements every message must carry checked present in both parts.
//!
//! Placeholders (`{{first_name}}`) are replaced after the Markdown is parsed, in the parsed text,
//! never in the source: a value is text to the writers in `markdown.rs`, which escape it, so it
//! cannot become markup, a link or another placeholder, whatever it holds.

use pulldown_cmark::{Event, Tag, TagEnd};

use mos_domain::senders::PostalAddress;

use crate::error::{InputError, Part, RenderError, Required};
use crate::markdown::{self, Headings};
use crate::personalisation::Personalisation;

/// The layout every message of a campaign is poured into: Markdown with placeholders, holding
/// `{{content}}` once, as a paragraph of its own, where the content's body goes, and the footer
/// (postal address, unsubscribe and preference links). It is content too: versioned and reviewed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    layout: String,
}

impl Template {
    pub fn new(layout: &str) -> Result<Self, InputError> {
        let events: Vec<Event> = markdown::parse(layout).collect();
        let slots = (0..events.len()).filter(|&i| content_slot(&events[i..])).count();
        // Any other `{{content}}` would only fail at render time, once per recipient.
        let mentions = events
            .iter()
            .filter(|e| matches!(e, Event::Text(t) if placeholders(t).is_ok_and(|p| p.iter().any(|(_, _, n)| *n == "content"))))
            .count();
        if slots != 1 || mentions != 1 {
            return Err(InputError::ContentSlot);
        }
        Ok(Self { layout: layout.to_owned() })
    }

    pub fn layout(&self) -> &str {
        &self.layout
    }
}

/// The approved piece: its title, its Markdown body, and the subject to send it under when that
/// is not the title. Both the subject and the body may hold placeholders.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    pub title: &'a str,
    pub body: &'a str,
    pub subject: Option<&'a str>,
}

/// An absolute https URL: the only kind RFC 8058 lets a one-click unsubscribe use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsUrl(url::Url);

impl HttpsUrl {
    pub fn parse(input: &str) -> Result<Self, InputError> {
        let url = url::Url::parse(input).map_err(|_| InputError::HttpsUrl)?;
        let plain = url.scheme() == "https"
            && url.host_str().is_some_and(|h| !h.is_empty())
            && url.username().is_empty()
            && url.password().is_none();
        if plain {
            Ok(Self(url))
        } else {
            Err(InputError::HttpsUrl)
        }
    }

    /// Its serialisation: ASCII, with `<`, `>`, `"` and spaces percent-encoded, so it fits in a
    /// header's angle brackets and an HTML attribute alike.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// What every message carries besides its content, per sender and per recipient.
#[derive(Debug, Clone)]
pub struct Essentials {
    /// The sender's, as stored (up to 10 lines): each line break becomes a `<br>` in the HTML
    /// part and a line break in the text part.
    pub postal_address: PostalAddress,
    /// Opens the page that asks to confirm (`GET`) and takes the one-click `POST` (RFC 8058).
    pub unsubscribe: HttpsUrl,
    pub preferences: HttpsUrl,
    /// Where each of the message's tracked links ([`tracked_links`]) leads instead, in their
    /// order; none to send the links as written (a preview).
    pub clicks: Vec<HttpsUrl>,
}

/// One recipient's message, before it is built: what the parts say, not yet how they are sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    subject: String,
    html: String,
    text: String,
    unsubscribe: HttpsUrl,
}

impl Rendered {
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// A whole HTML document (UTF-8).
    pub fn html(&self) -> &str {
        &self.html
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The one-click address the `List-Unsubscribe` header names: the body's, so the two cannot
    /// differ.
    pub fn unsubscribe(&self) -> &HttpsUrl {
        &self.unsubscribe
    }
}

/// Renders `content` in `template` for one recipient. Refused when a placeholder is not declared
/// (or stands where it may not), or when either part lacks the postal address or the unsubscribe
/// link (a template that forgot its footer).
pub fn render(
    template: &Template,
    content: &Content,
    values: &Personalisation,
    essentials: &Essentials,
) -> Result<Rendered, RenderError> {
    let fill = Fill { values, essentials };
    let subject = fill.subject(content.subject.unwrap_or(content.title))?;
    let events = fill.document(template, content.body)?;

    let mut body = String::with_capacity(template.layout.len() + content.body.len() * 2);
    markdown::write_html(events.iter().cloned(), Headings::FromH1, &mut body);
    let mut text = String::with_capacity(body.len());
    markdown::write_text(events, &mut text);

    // The address is compared with its whitespace runs made one space: its lines may stand
    // apart by `<br>`, by a soft break of the layout's own Markdown, or by a line break.
    let address = words(essentials.postal_address.as_str());
    let unsubscribe = essentials.unsubscribe.as_str();
    let mut link = String::from("<a href=\"");
    markdown::escape(&mut link, unsubscribe);
    link.push('"');
    let missing = |element, part| Err(RenderError::Missing { element, part });
    if !words(&visible_text(&body)).contains(&address) {
        return missing(Required::PostalAddress, Part::Html);
    }
    if !body.contains(&link) {
        return missing(Required::UnsubscribeLink, Part::Html);
    }
    if !words(&text).contains(&address) {
        return missing(Required::PostalAddress, Part::Text);
    }
    if !text.contains(unsubscribe) {
        return missing(Required::UnsubscribeLink, Part::Text);
    }

    let mut html = String::with_capacity(body.len() + 160);
    html.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    markdown::escape(&mut html, &subject);
    html.push_str("</title></head><body>");
    html.push_str(&body);
    html.push_str("</body></html>\n");
    Ok(Rendered { subject, html, text, unsubscribe: essentials.unsubscribe.clone() })
}

/// What the reader sees of HTML written by `markdown::write_html`: its text without tags (an
/// image's alt text is an attribute, so it does not count), a `<br>` as the line break it shows,
/// and with its four escapes undone. Enough for our own output, whose attribute values never
/// hold a `>`.
fn visible_text(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        text.push_str(&rest[..open]);
        let close = rest[open..].find('>');
        if close.is_some_and(|close| &rest[open..=open + close] == "<br>") {
            text.push('\n');
        }
        rest = close.map_or("", |close| &rest[open + close + 1..]);
    }
    text.push_str(rest);
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&amp;", "&")
}

/// `text`'s words, one space apart.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Where a placeholder stands, which decides what it may name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    Text,
    Subject,
}

struct Fill<'a> {
    values: &'a Personalisation,
    essentials: &'a Essentials,
}

impl Fill<'_> {
    fn subject(&self, subject: &str) -> Result<String, RenderError> {
        let subject = self.expand(subject, Place::Subject)?;
        if subject.trim().is_empty() || subject.chars().any(char::is_control) {
            return Err(RenderError::Subject);
        }
        Ok(subject)
    }

    /// The layout's events with the body's in place of its `{{content}}` paragraph, every
    /// placeholder replaced and every tracked link pointing at its click address.
    fn document<'e>(&self, template: &'e Template, body: &'e str) -> Result<Vec<Event<'e>>, RenderError> {
        let events = assemble(template, body)?;
        let tracked = events.iter().filter(|e| tracked(e).is_some()).count();
        if !self.essentials.clicks.is_empty() && self.essentials.clicks.len() != tracked {
            return Err(RenderError::Clicks { links: tracked, addresses: self.essentials.clicks.len() });
        }
        let mut out = Vec::with_capacity(events.len());
        self.events(events.into_iter(), &mut out)?;
        Ok(out)
    }

    fn events<'e>(&self, events: impl Iterator<Item = Event<'e>>, out: &mut Vec<Event<'e>>) -> Result<(), RenderError> {
        // Code is shown as written: a placeholder in it stays a placeholder.
        let mut in_code = false;
        let mut clicks = self.essentials.clicks.iter();
        for event in events {
            if tracked(&event).is_some() {
                if let (Some(click), Event::Start(Tag::Link { link_type, title, id, .. })) = (clicks.next(), &event) {
                    let dest_url = click.as_str().to_owned().into();
                    out.push(Event::Start(Tag::Link {
                        link_type: *link_type,
                        dest_url,
                        title: title.clone(),
                        id: id.clone(),
                    }));
                    continue;
                }
            }
            let event = match event {
                Event::Start(Tag::CodeBlock(kind)) => {
                    in_code = true;
                    Event::Start(Tag::CodeBlock(kind))
                }
                Event::End(TagEnd::CodeBlock) => {
                    in_code = false;
                    Event::End(TagEnd::CodeBlock)
                }
                Event::Text(text) if !in_code && text.contains("{{") => {
                    // Only the postal address brings line breaks (values hold no control
                    // characters): each becomes a hard break, `<br>` in HTML, a line in text.
                    let expanded = self.expand(&text, Place::Text)?;
                    let mut lines = expanded.split('\n').filter(|line| !line.is_empty()).peekable();
                    while let Some(line) = lines.next() {
                        out.push(markdown::text_event(line.to_owned()));
                        if lines.peek().is_some() {
                            out.push(Event::HardBreak);
                        }
                    }
                    continue;
                }
                Event::Start(Tag::Link { link_type, dest_url, title, id }) => {
                    Event::Start(Tag::Link { link_type, dest_url: self.address(dest_url)?, title, id })
                }
                Event::Start(Tag::Image { link_type, dest_url, title, id }) => {
                    Event::Start(Tag::Image { link_type, dest_url: self.address(dest_url)?, title, id })
                }
                other => other,
            };
            out.push(event);
        }
        Ok(())
    }

    /// A link's address: as written, or one of the two links every message carries. Nothing a
    /// recipient's values hold ever goes into an address.
    fn address<'e>(&self, dest: pulldown_cmark::CowStr<'e>) -> Result<pulldown_cmark::CowStr<'e>, RenderError> {
        if !dest.contains("{{") {
            return Ok(dest);
        }
        let name = match placeholders(&dest).as_deref() {
            Ok([(0, end, name)]) if *end == dest.len() => (*name).to_owned(),
            Ok([(_, _, name), ..]) => return Err(RenderError::InAddress((*name).to_owned())),
            _ => return Err(RenderError::Malformed),
        };
        match name.as_str() {
            "unsubscribe_url" => Ok(self.essentials.unsubscribe.as_str().to_owned().into()),
            "preferences_url" => Ok(self.essentials.preferences.as_str().to_owned().into()),
            _ => Err(RenderError::InAddress(name)),
        }
    }

    /// `text` with each placeholder replaced by what it names, in one pass: what a value holds is
    /// never read for placeholders again.
    fn expand(&self, text: &str, place: Place) -> Result<String, RenderError> {
        let found = placeholders(text)?;
        let mut out = String::with_capacity(text.len() + 32 * found.len());
        let mut at = 0;
        for (start, end, name) in found {
            out.push_str(&text[at..start]);
            if name == "content" {
                return Err(RenderError::MisplacedContent);
            }
            let value = match (self.values.get(name), name, place) {
                (Some(value), _, _) => value,
                (None, "postal_address", Place::Text) => self.essentials.postal_address.as_str(),
                (None, "unsubscribe_url", Place::Text) => self.essentials.unsubscribe.as_str(),
                (None, "preferences_url", Place::Text) => self.essentials.preferences.as_str(),
                (None, name, Place::Subject) if crate::personalisation::RESERVED.contains(&name) => {
                    return Err(RenderError::InSubject(name.to_owned()))
                }
                (None, name, _) => return Err(RenderError::Undeclared(name.to_owned())),
            };
            out.push_str(value);
            at = end;
        }
        out.push_str(&text[at..]);
        Ok(out)
    }
}

/// Each `{{ name }}` in `text` as (start, end, name). A `{{` that opens no placeholder is refused
/// rather than shown: a typo in a placeholder must not reach recipients as braces.
fn placeholders(text: &str) -> Result<Vec<(usize, usize, &str)>, RenderError> {
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(open) = text[from..].find("{{") {
        let start = from + open;
        let close = text[start + 2..].find("}}").ok_or(RenderError::Malformed)?;
        let end = start + 2 + close + 2;
        let name = text[start + 2..end - 2].trim();
        let mut chars = name.chars();
        let well_formed = chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !well_formed {
            return Err(RenderError::Malformed);
        }
        found.push((start, end, name));
        from = end;
    }
    Ok(found)
}

/// The layout's events with the body's in place of its `{{content}}` paragraph, as written.
fn assemble<'e>(template: &'e Template, body: &'e str) -> Result<Vec<Event<'e>>, RenderError> {
    let mut layout: Vec<Event> = markdown::parse(&template.layout).collect();
    // `Template::new` saw exactly one slot; a layout without one would lose the body.
    let slot = (0..layout.len()).find(|&i| content_slot(&layout[i..])).ok_or(RenderError::MisplacedContent)?;
    let after = layout.split_off(slot + 3);
    layout.truncate(slot);
    layout.extend(markdown::parse(body));
    layout.extend(after);
    Ok(layout)
}

/// The address of a link that is followed through a tracked link: one written out as an absolute
/// http(s) address (not a placeholder such as the unsubscribe link, nor mail or a relative
/// address). An image's address is never one: loading it would tell when a message is opened.
fn tracked<'a>(event: &'a Event) -> Option<&'a str> {
    match event {
        Event::Start(Tag::Link { dest_url, .. })
            if !dest_url.contains("{{")
                && url::Url::parse(dest_url).is_ok_and(|u| matches!(u.scheme(), "http" | "https")) =>
        {
            Some(dest_url)
        }
        _ => None,
    }
}

/// The addresses of the tracked links of `content` in `template`, in the order a message holds
/// them: the n-th click address of [`Essentials::clicks`] leads to the n-th of these. The redirect
/// reads them from the approved versions again, so it can lead nowhere they do not point.
/// Each is the address as a URL serialises it: ASCII, fit for a `Location` header.
pub fn tracked_links(template: &Template, body: &str) -> Result<Vec<String>, RenderError> {
    Ok(assemble(template, body)?
        .iter()
        .filter_map(tracked)
        .filter_map(|d| url::Url::parse(d).ok())
        .map(String::from)
        .collect())
}

/// Whether `events` start with the layout's content slot: a paragraph that is `{{content}}` alone.
fn content_slot(events: &[Event]) -> bool {
    match events {
        [Event::Start(Tag::Paragraph), Event::Text(text), Event::End(TagEnd::Paragraph), ..] => {
            matches!(placeholders(text).as_deref(), Ok([(0, end, "content")]) if *end == text.len())
        }
        _ => false,
    }
}
