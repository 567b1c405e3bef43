//! A content body's Markdown, rendered as HTML (for the console and for a message's HTML part)
//! and as plain text (a message's text part). The body is written by a member and read by others
//! (reviewers, ADMINs, recipients), so nothing in it may run where it is read: raw HTML in the
//! text is shown as text, never passed through, and a link or image keeps its address only when
//! that is http(s), mailto or relative (no `javascript:`, `data:` or `vbscript:`). Only plain
//! CommonMark is parsed (no tables, footnotes or other extensions), and every tag written here
//! comes from this file: the text itself decides none of them. One renderer for every door, so
//! that what a reviewer sees is what a recipient gets.

use pulldown_cmark::{CodeBlockKind, CowStr, Event, HeadingLevel, Options, Parser, Tag, TextMergeStream};

/// Which HTML level a body's `#` heading becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Headings {
    /// A message: the body is the whole document, `#` is `h1`.
    FromH1,
    /// A console page: `#` is `h3`, below the page's own `h1` and the `h2` that introduces the text.
    FromH3,
}

/// `body` as HTML: its Markdown rendered, raw HTML escaped, unsafe addresses dropped.
pub fn html(body: &str, headings: Headings) -> String {
    let mut out = String::with_capacity(body.len() + body.len() / 4);
    write_html(parse(body), headings, &mut out);
    out
}

/// `body` as plain text: no markup, a link as `words <address>`, list items marked `- ` or `1. `.
pub fn text(body: &str) -> String {
    let mut out = String::with_capacity(body.len());
    write_text(parse(body), &mut out);
    out
}

/// The events of `body`, adjacent text joined (the parser splits text where a delimiter did not
/// turn into markup, as in `first_name`), so that a placeholder arrives as one piece.
pub(crate) fn parse(body: &str) -> impl Iterator<Item = Event<'_>> {
    TextMergeStream::new(Parser::new_ext(body, Options::empty()))
}

/// Writes `text` into HTML text or a double-quoted attribute value, with the four characters that
/// could end either escaped.
pub(crate) fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

pub(crate) fn write_html<'a>(events: impl IntoIterator<Item = Event<'a>>, headings: Headings, out: &mut String) {
    // What each open element needs to close it, innermost last.
    let mut closing: Vec<&'static str> = Vec::new();
    // Inside an image: its address (if allowed), the alt text gathered so far, and how many
    // elements inside the alt text are still open.
    let mut image: Option<(Option<String>, String, usize)> = None;
    for event in events {
        if let Some((_, alt, depth)) = image.as_mut() {
            match event {
                Event::Start(_) => *depth += 1,
                Event::End(_) if *depth > 0 => *depth -= 1,
                Event::End(_) => {
                    if let Some((src, alt, _)) = image.take() {
                        write_image(out, src.as_deref(), &alt);
                    }
                }
                Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => alt.push_str(&t),
                Event::SoftBreak | Event::HardBreak => alt.push(' '),
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(Tag::Image { dest_url, .. }) => image = Some((allowed(&dest_url), String::new(), 0)),
            Event::Start(tag) => closing.push(open(out, tag, headings)),
            Event::End(_) => out.push_str(closing.pop().unwrap_or_default()),
            // Raw HTML, as a block or inline, is shown as the text it is.
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => escape(out, &t),
            Event::Code(t) => {
                out.push_str("<code>");
                escape(out, &t);
                out.push_str("</code>");
            }
            Event::SoftBreak => out.push('\n'),
            Event::HardBreak => out.push_str("<br>"),
            Event::Rule => out.push_str("<hr>"),
            // Not produced without extensions; their text, if any, still comes as Text.
            _ => {}
        }
    }
    // The parser closes every element it opens; this only guards the page against a bug there.
    while let Some(end) = closing.pop() {
        out.push_str(end);
    }
}

/// Writes the opening of `tag` and returns its closing.
fn open(out: &mut String, tag: Tag, headings: Headings) -> &'static str {
    let (opening, closing) = match tag {
        Tag::Paragraph => ("<p>", "</p>"),
        Tag::Heading { level, .. } => heading(level, headings),
        Tag::BlockQuote(_) => ("<blockquote>", "</blockquote>"),
        Tag::CodeBlock(CodeBlockKind::Fenced(_) | CodeBlockKind::Indented) => ("<pre><code>", "</code></pre>"),
        // Its lines come as Html events, which are escaped: the block reads as its source.
        Tag::HtmlBlock => ("<p>", "</p>"),
        Tag::List(Some(start)) if start != 1 => {
            out.push_str(&format!("<ol start=\"{start}\">"));
            return "</ol>";
        }
        Tag::List(Some(_)) => ("<ol>", "</ol>"),
        Tag::List(None) => ("<ul>", "</ul>"),
        Tag::Item => ("<li>", "</li>"),
        Tag::Emphasis => ("<em>", "</em>"),
        Tag::Strong => ("<strong>", "</strong>"),
        Tag::Link { dest_url, title, .. } => match allowed(&dest_url) {
            Some(href) => {
                out.push_str("<a href=\"");
                escape(out, &href);
                if !title.is_empty() {
                    out.push_str("\" title=\"");
                    escape(out, &title);
                }
                // The target is the writer's choice: it learns nothing of where the link was.
                out.push_str("\" rel=\"noopener noreferrer nofollow\">");
                return "</a>";
            }
            // A refused address: the link's words stay, as plain text.
            None => return "",
        },
        _ => return "",
    };
    out.push_str(opening);
    closing
}

fn heading(level: HeadingLevel, headings: Headings) -> (&'static str, &'static str) {
    const TAGS: [(&str, &str); 6] = [
        ("<h1>", "</h1>"),
        ("<h2>", "</h2>"),
        ("<h3>", "</h3>"),
        ("<h4>", "</h4>"),
        ("<h5>", "</h5>"),
        ("<h6>", "</h6>"),
    ];
    let shift = match headings {
        Headings::FromH1 => 0,
        Headings::FromH3 => 2,
    };
    TAGS[(level as usize - 1 + shift).min(5)]
}

fn write_image(out: &mut String, src: Option<&str>, alt: &str) {
    match src {
        Some(src) => {
            out.push_str("<img src=\"");
            escape(out, src);
            out.push_str("\" alt=\"");
            escape(out, alt);
            out.push_str("\">");
        }
        None => escape(out, alt),
    }
}

/// Plain text from the same events as the HTML, so that both parts say the same thing: blocks
/// apart by a blank line, list items one a line, a link's address after its words (unless the
/// words are the address), an image by its alt text, raw HTML as the text it is.
pub(crate) fn write_text<'a>(events: impl IntoIterator<Item = Event<'a>>, out: &mut String) {
    // For each open list, the number of its next item (None: a bullet list).
    let mut lists: Vec<Option<u64>> = Vec::new();
    // For each open link: its address if allowed, and where its words start in `out`.
    let mut links: Vec<(Option<String>, usize)> = Vec::new();
    // Right after an item's marker: the item's first paragraph goes on the marker's line.
    let mut item_start = false;
    for event in events {
        match event {
            Event::Start(Tag::Item) => {
                new_line(out);
                out.push_str(&"   ".repeat(lists.len().saturating_sub(1)));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("- "),
                }
                item_start = true;
                continue;
            }
            Event::Start(Tag::List(start)) => {
                if lists.is_empty() {
                    new_block(out);
                }
                lists.push(start);
            }
            Event::End(pulldown_cmark::TagEnd::List(_)) => {
                lists.pop();
            }
            Event::Start(Tag::Paragraph | Tag::HtmlBlock) if item_start => {}
            Event::Start(
                Tag::Paragraph | Tag::HtmlBlock | Tag::Heading { .. } | Tag::BlockQuote(_) | Tag::CodeBlock(_),
            ) => new_block(out),
            Event::Start(Tag::Link { dest_url, .. }) => links.push((allowed(&dest_url), out.len())),
            Event::End(pulldown_cmark::TagEnd::Link) => {
                if let Some((Some(address), from)) = links.pop() {
                    let words = out.get(from..).unwrap_or_default();
                    if words != address && Some(words) != address.strip_prefix("mailto:") {
                        out.push_str(" <");
                        out.push_str(&address);
                        out.push('>');
                    }
                }
            }
            Event::End(pulldown_cmark::TagEnd::CodeBlock) => {
                while out.ends_with('\n') {
                    out.pop();
                }
            }
            Event::Text(t) | Event::Code(t) | Event::Html(t) | Event::InlineHtml(t) => out.push_str(&t),
            Event::SoftBreak | Event::HardBreak => out.push('\n'),
            Event::Rule => {
                new_block(out);
                out.push_str("----------");
            }
            _ => {}
        }
        item_start = false;
    }
    let end = out.trim_end().len();
    out.truncate(end);
    out.push('\n');
}

fn new_line(out: &mut String) {
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn new_block(out: &mut String) {
    if out.is_empty() {
        return;
    }
    while !out.ends_with("\n\n") {
        out.push('\n');
    }
}

/// The address a browser would follow, when it is http(s), mailto or relative. Browsers remove
/// tabs and line breaks anywhere in an address and control characters and spaces around it
/// before they read its scheme (`java\tscript:` is `javascript:`), so the check runs on what
/// they would read, and that is what is written out.
pub(crate) fn allowed(url: &str) -> Option<String> {
    let cleaned: String = url
        .trim_matches(|c: char| c.is_ascii_control() || c == ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let before_path = cleaned.split(['/', '?', '#']).next().unwrap_or_default();
    match before_path.split_once(':') {
        None => Some(cleaned),
        Some((scheme, _)) => {
            let scheme = scheme.to_ascii_lowercase();
            matches!(scheme.as_str(), "http" | "https" | "mailto").then_some(cleaned)
        }
    }
}

/// Text a placeholder expanded into, as an event the writers above escape like any other text.
pub(crate) fn text_event<'a>(text: String) -> Event<'a> {
    Event::Text(CowStr::from(text))
}

#[cfg(test)]
mod tests {
    use super::{text, Headings};

    fn html(body: &str) -> String {
        super::html(body, Headings::FromH3)
    }

    #[test]
    fn markdown_comes_out_as_its_elements() {
        assert_eq!(html("Use **SPF 50** daily."), "<p>Use <strong>SPF 50</strong> daily.</p>");
        assert_eq!(html("# Flu\n\n- one\n- *two*"), "<h3>Flu</h3><ul><li>one</li><li><em>two</em></li></ul>");
        assert_eq!(html("3. three\n4. four"), "<ol start=\"3\"><li>three</li><li>four</li></ol>");
        assert_eq!(html("`a<b`"), "<p><code>a&lt;b</code></p>");
        assert_eq!(
            html("[book](https://example.com/book?a=1&b=2 \"Book\")"),
            "<p><a href=\"https://example.com/book?a=1&amp;b=2\" title=\"Book\" rel=\"noopener noreferrer nofollow\">book</a></p>"
        );
        assert_eq!(
            html("[us](/about) [mail](mailto:care@example.com)"),
            "<p><a href=\"/about\" rel=\"noopener noreferrer nofollow\">us</a> \
             <a href=\"mailto:care@example.com\" rel=\"noopener noreferrer nofollow\">mail</a></p>"
        );
        assert_eq!(html("![a *sun*](sun.png)"), "<p><img src=\"sun.png\" alt=\"a sun\"></p>");
    }

    #[test]
    fn raw_html_is_shown_as_text_never_as_markup() {
        for hostile in [
            "<script>alert(1)</script>",
            "Hi <script>alert(1)</script> there",
            "<img src=x onerror=alert(1)>",
            "text <img src=x onerror=alert(1)> text",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<!-- <script>alert(1)</script> -->",
            "<svg onload=alert(1)>",
            "**<b onmouseover=alert(1)>bold</b>**",
            "```\n<script>alert(1)</script>\n```",
        ] {
            let out = html(hostile);
            for tag in ["<script", "<img", "<iframe", "<a ", "<svg", "<b ", "<!--"] {
                assert!(!out.contains(tag), "{hostile:?} gave {out:?}");
            }
            assert!(out.contains("&lt;"), "{hostile:?} gave {out:?}: its markup must still be readable");
        }
    }

    #[test]
    fn links_and_images_keep_only_safe_addresses() {
        for hostile in [
            "[x](javascript:alert(1))",
            "[x](JavaScript:alert(1))",
            "[x](java\tscript:alert(1))",
            "[x]( javascript:alert(1))",
            "[x](&#106;avascript:alert(1))",
            "[x](javascript&colon;alert(1))",
            "[x](<javascript:alert(1)>)",
            "<javascript:alert(1)>",
            "[x](vbscript:msgbox(1))",
            "[x](data:text/html;base64,PHNjcmlwdD4=)",
            "[x][r]\n\n[r]: javascript:alert(1)",
            "![x](javascript:alert(1))",
            "![x](data:image/svg+xml,<svg onload=alert(1)>)",
        ] {
            let out = html(hostile);
            assert!(!out.contains("href") && !out.contains("src") && !out.contains("<a"), "{hostile:?} gave {out:?}");
            assert!(out.contains('x') || out.contains("javascript"), "{hostile:?} gave {out:?}: its words stay");
        }
        assert!(html("<https://example.com>").contains("href=\"https://example.com\""));
        assert!(html("[x](HTTPS://example.com)").contains("href=\"HTTPS://example.com\""));
        assert!(html("[x](page#a:b)").contains("href=\"page#a:b\""), "a colon after the path is no scheme");
    }

    #[test]
    fn attributes_cannot_be_broken_out_of() {
        let out = html("[x](https://e.example/\"onmouseover=\"alert(1) \"t\\\" onclick=\\\"alert(1)\")");
        assert!(!out.contains("\"onmouseover") && !out.contains("\" onclick"), "{out:?}");
        let out = html("![\" onerror=\"alert(1)](https://e.example/a.png)");
        assert!(!out.contains("\" onerror"), "{out:?}");
    }

    #[test]
    fn the_text_part_has_no_markup_and_shows_each_links_address() {
        assert_eq!(text("Use **SPF 50** _daily_."), "Use SPF 50 daily.\n");
        assert_eq!(
            text("# Flu\n\nSee [the clinic](https://c.example/a?b=1&c=2)."),
            "Flu\n\nSee the clinic <https://c.example/a?b=1&c=2>.\n"
        );
        assert_eq!(
            text("<https://c.example> [care@c.example](mailto:care@c.example)"),
            "https://c.example care@c.example\n"
        );
        assert_eq!(text("[x](javascript:alert(1)) ![a *sun*](sun.png)"), "x a sun\n");
        assert_eq!(text("- one\n- two\n  1. deep\n\n3. three"), "- one\n- two\n   1. deep\n\n3. three\n");
        assert_eq!(text("- loose\n\n- list"), "- loose\n- list\n");
        assert_eq!(
            text("> quoted <b>raw</b>\n\n```\ncode\n```\n\n***\n\nend"),
            "quoted <b>raw</b>\n\ncode\n\n----------\n\nend\n"
        );
        assert_eq!(text("line  \nbreak\nsoft"), "line\nbreak\nsoft\n");
    }

    #[test]
    fn a_message_starts_its_headings_at_h1_and_a_page_below_its_own() {
        assert_eq!(super::html("# a\n###### f", Headings::FromH1), "<h1>a</h1><h6>f</h6>");
        assert_eq!(super::html("# a\n#### d", Headings::FromH3), "<h3>a</h3><h6>d</h6>");
    }
}
