//! A content body's Markdown, rendered for the console. The body is written by a member and read
//! by others (reviewers, ADMINs), so nothing in it may run in their browser: raw HTML in the text
//! is shown as text, never passed through, and a link or image keeps its address only when that
//! is http(s), mailto or relative (no `javascript:`, `data:` or `vbscript:`). Only plain
//! CommonMark is parsed (no tables, footnotes or other extensions), and every tag written here
//! comes from this file: the text itself decides none of them.

use maud::{Markup, PreEscaped, Render};
use pulldown_cmark::{CodeBlockKind, Event, HeadingLevel, Options, Parser, Tag};

/// `body` as HTML: its Markdown rendered, raw HTML escaped, unsafe addresses dropped.
/// Headings start at `h3`, below the page's own `h1` and the `h2` that introduces the text.
pub fn render(body: &str) -> Markup {
    let mut out = String::with_capacity(body.len() + body.len() / 4);
    // What each open element needs to close it, innermost last.
    let mut closing: Vec<&'static str> = Vec::new();
    // Inside an image: its address (if allowed), the alt text gathered so far, and how many
    // elements inside the alt text are still open.
    let mut image: Option<(Option<String>, String, usize)> = None;
    for event in Parser::new_ext(body, Options::empty()) {
        if let Some((_, alt, depth)) = image.as_mut() {
            match event {
                Event::Start(_) => *depth += 1,
                Event::End(_) if *depth > 0 => *depth -= 1,
                Event::End(_) => {
                    if let Some((src, alt, _)) = image.take() {
                        write_image(&mut out, src.as_deref(), &alt);
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
            Event::Start(tag) => closing.push(open(&mut out, tag)),
            Event::End(_) => out.push_str(closing.pop().unwrap_or_default()),
            // Raw HTML, as a block or inline, is shown as the text it is.
            Event::Text(t) | Event::Html(t) | Event::InlineHtml(t) => t.render_to(&mut out),
            Event::Code(t) => {
                out.push_str("<code>");
                t.render_to(&mut out);
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
    PreEscaped(out)
}

/// Writes the opening of `tag` and returns its closing.
fn open(out: &mut String, tag: Tag) -> &'static str {
    let (opening, closing) = match tag {
        Tag::Paragraph => ("<p>", "</p>"),
        Tag::Heading { level, .. } => match level {
            HeadingLevel::H1 => ("<h3>", "</h3>"),
            HeadingLevel::H2 => ("<h4>", "</h4>"),
            HeadingLevel::H3 => ("<h5>", "</h5>"),
            _ => ("<h6>", "</h6>"),
        },
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
                href.render_to(out);
                if !title.is_empty() {
                    out.push_str("\" title=\"");
                    title.render_to(out);
                }
                // The target is the writer's choice: it learns nothing of the console.
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

fn write_image(out: &mut String, src: Option<&str>, alt: &str) {
    match src {
        Some(src) => {
            out.push_str("<img src=\"");
            src.render_to(out);
            out.push_str("\" alt=\"");
            alt.render_to(out);
            out.push_str("\">");
        }
        None => alt.render_to(out),
    }
}

/// The address a browser would follow, when it is http(s), mailto or relative. Browsers remove
/// tabs and line breaks anywhere in an address and control characters and spaces around it
/// before they read its scheme (`java\tscript:` is `javascript:`), so the check runs on what
/// they would read, and that is what is written out.
fn allowed(url: &str) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::render;

    fn html(body: &str) -> String {
        render(body).into_string()
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
}
