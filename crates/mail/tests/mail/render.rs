use mos_mail::{
    render, Content, Essentials, Field, Fields, HttpsUrl, InputError, Part, Personalisation, RenderError, Required,
    Template,
};

use crate::{content, essentials, fields, rendered, template, values, ADDRESS, LAYOUT, PREFERENCES, UNSUBSCRIBE};

#[test]
fn a_small_body_renders_to_exactly_this_html_and_text() {
    let body = "# Hello {{first_name}}\n\nOur **flu clinic** in {{city}} opens *Monday*: [book a slot](https://clinic.example/book?a=1&b=2).\n\n- Bring your card\n- Wear a `short` sleeve\n";
    let message = rendered(body, "Ada");
    assert_eq!(message.subject(), "Flu shots for Ada");
    assert_eq!(
        message.html(),
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Flu shots for Ada</title></head><body>\
         <h1>Hello Ada</h1>\
         <p>Our <strong>flu clinic</strong> in Springfield opens <em>Monday</em>: \
         <a href=\"https://clinic.example/book?a=1&amp;b=2\" rel=\"noopener noreferrer nofollow\">book a slot</a>.</p>\
         <ul><li>Bring your card</li><li>Wear a <code>short</code> sleeve</li></ul>\
         <hr>\
         <p>Acme Health<br>1 Main Street<br>Springfield, IL 62701</p>\
         <p><a href=\"https://mos.example/u/tok3n?c=1&amp;k=2\" rel=\"noopener noreferrer nofollow\">Unsubscribe</a> | \
         <a href=\"https://mos.example/p/tok3n\" rel=\"noopener noreferrer nofollow\">Preferences</a></p>\
         </body></html>\n"
    );
    assert_eq!(
        message.text(),
        "Hello Ada\n\
         \n\
         Our flu clinic in Springfield opens Monday: book a slot <https://clinic.example/book?a=1&b=2>.\n\
         \n\
         - Bring your card\n\
         - Wear a short sleeve\n\
         \n\
         ----------\n\
         \n\
         Acme Health\n\
         1 Main Street\n\
         Springfield, IL 62701\n\
         \n\
         Unsubscribe <https://mos.example/u/tok3n?c=1&k=2> | Preferences <https://mos.example/p/tok3n>\n"
    );
}

#[test]
fn values_are_text_in_both_parts_and_never_markup_links_or_placeholders() {
    let body = "Dear {{first_name}},\n\n![Photo of {{first_name}}](https://clinic.example/p.png)\n\n[Your {{first_name}} page](https://clinic.example/me)";
    for hostile in [
        "<a href=evil>win</a>",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<script>alert(1)</script>",
        "\" onerror=\"alert(1)",
        "O'Brien \"the\" <b>",
        "**bold** [x](javascript:y)",
        "{{unsubscribe_url}} {{postal_address}}",
        "{{content}}",
        "{{ first_name }} {{nope}} {{",
        "&lt;script&gt; &amp;",
    ] {
        let message = rendered(body, hostile);
        let html = message.html();
        let text = message.text();
        for markup in ["<a href=evil", "<script", "<b>", "\" onerror", "<strong>", "javascript:alert(1)\">"] {
            assert!(!html.contains(markup), "{hostile:?} gave {html}");
        }
        // Only the three links the body and layout hold: the value added none.
        assert_eq!(html.matches("<a ").count(), 3, "{hostile:?} gave {html}");
        assert_eq!(html.matches("<img ").count(), 1, "{hostile:?} gave {html}");
        // The placeholders a value holds are shown as typed, not replaced.
        if hostile.contains("{{") {
            assert!(html.contains(&hostile.replace('<', "&lt;")) || html.contains(hostile), "{hostile:?} gave {html}");
            assert!(text.contains(hostile), "{hostile:?} gave {text}");
        }
        // The text part holds the value as it is, three times.
        assert_eq!(text.matches(hostile).count(), 3, "{hostile:?} gave {text}");
        assert_eq!(text.matches(UNSUBSCRIBE).count(), 1, "{hostile:?} gave {text}");
    }
    let message = rendered(body, "\" onerror=\"alert(1)");
    assert!(message.html().contains("alt=\"Photo of &quot; onerror=&quot;alert(1)\""), "{}", message.html());
    let message = rendered(body, "&lt;script&gt;");
    assert!(message.html().contains("Dear &amp;lt;script&amp;gt;,"), "{}", message.html());
}

#[test]
fn a_value_with_a_line_break_a_control_or_an_address_is_refused_before_rendering() {
    for (value, error) in [
        ("Ada\r\nBcc: all@example.com", InputError::Invisible("first_name".into())),
        ("Ada\nX", InputError::Invisible("first_name".into())),
        ("Ada\u{202E}txt.exe", InputError::Invisible("first_name".into())),
        ("Ada\u{0}", InputError::Invisible("first_name".into())),
        ("see https://evil.example", InputError::LinkLike("first_name".into())),
        ("WWW.evil.example", InputError::LinkLike("first_name".into())),
        ("ada@evil.example", InputError::LinkLike("first_name".into())),
        ("A".repeat(41).leak(), InputError::TooLong { field: "first_name".into(), max: 40 }),
    ] {
        let refused = Personalisation::new(&fields(), [("first_name", value), ("city", "x")]);
        assert_eq!(refused, Err(error), "{value:?}");
        // The error names the field, never the value (it is personal data and goes to logs).
        let said = refused.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(!said.contains(value), "{said}");
    }
    assert!(Personalisation::new(&fields(), [("first_name", "A".repeat(40).as_str()), ("city", "")]).is_ok());
    assert!(Personalisation::new(&fields(), [("first_name", "Zoë 😀 D'Arcy-Núñez"), ("city", "")]).is_ok());
}

#[test]
fn only_declared_fields_are_filled_and_every_one_is() {
    assert_eq!(
        Personalisation::new(&fields(), [("first_name", "Ada"), ("city", "x"), ("diagnosis", "flu")]),
        Err(InputError::UndeclaredValue("diagnosis".into()))
    );
    assert_eq!(Personalisation::new(&fields(), [("first_name", "Ada")]), Err(InputError::MissingValue("city".into())));
    assert_eq!(Field::text("unsubscribe_url", 40), Err(InputError::ReservedField("unsubscribe_url".into())));
    assert_eq!(Field::text("First Name", 40), Err(InputError::FieldName));
    assert_eq!(Field::text("first_name", 0), Err(InputError::MaxChars));
    let twice = || Field::text("first_name", 40).expect("a field");
    assert_eq!(Fields::new(vec![twice(), twice()]), Err(InputError::DuplicateField("first_name".into())));

    // A placeholder that names no declared field is refused wherever it stands, typed.
    let layout_with = |extra: &str| Template::new(&format!("{LAYOUT}\n{extra}\n")).expect("a layout");
    for (template, body, subject) in [
        (template(), "Hi {{last_name}}", None),
        (layout_with("Bye {{last_name}}"), "Hi", None),
        (template(), "Hi", Some("For {{last_name}}")),
        (template(), "[x](https://e.example) **{{last_name}}**", None),
    ] {
        let content = Content { title: "T", body, subject };
        assert_eq!(
            render(&template, &content, &values("Ada"), &essentials()),
            Err(RenderError::Undeclared("last_name".into())),
            "{body:?} {subject:?}"
        );
    }
    // With no fields declared, even `first_name` is undeclared.
    let bare = Content { title: "T", body: "Hi {{first_name}}", subject: None };
    assert_eq!(
        render(&template(), &bare, &Personalisation::none(), &essentials()),
        Err(RenderError::Undeclared("first_name".into()))
    );
}

#[test]
fn placeholders_stand_only_where_they_may() {
    let try_body = |body: &str| render(&template(), &content(body), &values("Ada"), &essentials());
    assert_eq!(try_body("[x]({{first_name}})"), Err(RenderError::InAddress("first_name".into())));
    assert_eq!(try_body("[x](https://e.example/{{first_name}})"), Err(RenderError::InAddress("first_name".into())));
    assert_eq!(try_body("![x]({{city}})"), Err(RenderError::InAddress("city".into())));
    assert_eq!(try_body("Hi {{content}}"), Err(RenderError::MisplacedContent));
    assert_eq!(try_body("{{content}}"), Err(RenderError::MisplacedContent));
    for malformed in ["Hi {{First}}", "Hi {{first name}}", "Hi {{first_name", "Hi {{}}", "Hi {{ {{first_name}}"] {
        assert_eq!(try_body(malformed), Err(RenderError::Malformed), "{malformed:?}");
    }
    let subject = |s: &'static str| Content { title: "T", body: "b", subject: Some(s) };
    let try_subject = |s| render(&template(), &subject(s), &values("Ada"), &essentials());
    assert_eq!(try_subject("{{unsubscribe_url}}"), Err(RenderError::InSubject("unsubscribe_url".into())));
    assert_eq!(try_subject("Hi\r\nBcc: all@example.com"), Err(RenderError::Subject));
    assert_eq!(try_subject("{{city}}").map(|r| r.subject().to_owned()), Ok("Springfield".into()));
    assert_eq!(
        render(&template(), &Content { title: "T", body: "b", subject: Some(" ") }, &values("Ada"), &essentials()),
        Err(RenderError::Subject)
    );

    // Code is shown as written.
    let shown = rendered("`{{first_name}}`\n\n```\n{{first_name}}\n```", "Ada");
    assert!(shown.html().contains("<code>{{first_name}}</code>"), "{}", shown.html());
    assert!(shown.html().contains("<pre><code>{{first_name}}\n</code></pre>"), "{}", shown.html());

    // The layout holds its content slot once, as a paragraph of its own.
    for layout in [
        "No slot",
        "{{content}}\n\n{{content}}",
        "Before {{content}}",
        "- {{content}}x",
        "{{content}}\n\n# {{content}}",
    ] {
        assert_eq!(Template::new(layout), Err(InputError::ContentSlot), "{layout:?}");
    }
    assert!(Template::new("> {{content}}\n\n{{postal_address}}").is_ok(), "a slot in a quote is a paragraph too");
}

#[test]
fn a_template_that_forgot_its_footer_is_refused_with_what_is_missing() {
    let try_layout = |layout: &str| {
        let template = Template::new(layout).expect("a layout");
        render(&template, &content("Hi {{first_name}}"), &values("Ada"), &essentials())
    };
    let missing = |element, part| Err(RenderError::Missing { element, part });
    assert_eq!(try_layout("{{content}}"), missing(Required::PostalAddress, Part::Html));
    assert_eq!(
        try_layout("{{content}}\n\n[Unsubscribe]({{unsubscribe_url}})"),
        missing(Required::PostalAddress, Part::Html)
    );
    assert_eq!(try_layout("{{content}}\n\n{{postal_address}}"), missing(Required::UnsubscribeLink, Part::Html));
    // The address as an image's alt text is not shown (the text part would have it).
    assert_eq!(
        try_layout(
            "{{content}}\n\n![{{postal_address}}](https://e.example/a.png)\n\n[Unsubscribe]({{unsubscribe_url}})"
        ),
        missing(Required::PostalAddress, Part::Html)
    );
    // The unsubscribe address written out as text, or as an image, is not a link to follow.
    assert_eq!(
        try_layout("{{content}}\n\n{{postal_address}}\n\nUnsubscribe: {{unsubscribe_url}}"),
        missing(Required::UnsubscribeLink, Part::Html)
    );
    assert_eq!(
        try_layout("{{content}}\n\n{{postal_address}}\n\n![Unsubscribe]({{unsubscribe_url}})"),
        missing(Required::UnsubscribeLink, Part::Html)
    );
    // The preferences link in the unsubscribe link's place does not count for it.
    assert_eq!(
        try_layout("{{content}}\n\n{{postal_address}}\n\n[Unsubscribe]({{preferences_url}})"),
        missing(Required::UnsubscribeLink, Part::Html)
    );
    // A value cannot stand in for the footer: the body writing the address's words is enough only
    // because they are the address; a recipient's value never holds a link.
    assert!(try_layout(LAYOUT).is_ok());
    assert!(try_layout(&format!("{{{{content}}}}\n\n{ADDRESS}\n\n[Stop]({UNSUBSCRIBE})")).is_ok());
    assert!(try_layout(&format!("{{{{content}}}}\n\n{{{{postal_address}}}} [Stop]({PREFERENCES})")).is_err());
    // Every line of the address counts: a footer with its first lines only is refused.
    let partial = ADDRESS.rsplit_once('\n').map(|(first, _)| first).unwrap_or_default();
    assert_eq!(
        try_layout(&format!("{{{{content}}}}\n\n{partial}\n\n[Stop]({{{{unsubscribe_url}}}})")),
        missing(Required::PostalAddress, Part::Html)
    );
}

#[test]
fn each_written_out_web_link_of_the_content_and_the_template_leads_through_its_click_address_in_order() {
    let layout = "[Our site](https://clinic.example/)\n\n{{content}}\n\n{{postal_address}}\n\n[Unsubscribe]({{unsubscribe_url}}) | [Preferences]({{preferences_url}}) | [Privacy](https://clinic.example/privacy)\n";
    let template = Template::new(layout).unwrap();
    let body = "[Book](https://clinic.example/book?a=1&b=2), <https://clinic.example/faq>, [mail us](mailto:desk@clinic.example), [here](/relative), ![logo](https://clinic.example/logo.png) and [Book](https://clinic.example/book?a=1&b=2) again.";
    let links = mos_mail::tracked_links(&template, body).unwrap();
    assert_eq!(
        links,
        [
            "https://clinic.example/",
            "https://clinic.example/book?a=1&b=2",
            "https://clinic.example/faq",
            "https://clinic.example/book?a=1&b=2",
            "https://clinic.example/privacy",
        ]
    );
    let clicks: Vec<HttpsUrl> =
        (0..links.len()).map(|n| HttpsUrl::parse(&format!("https://mos.example/c/t{n}")).unwrap()).collect();
    let tracked = Essentials { clicks: clicks.clone(), ..essentials() };
    let message = render(&template, &content(body), &values("Ada"), &tracked).unwrap();
    for (n, original) in links.iter().enumerate() {
        assert!(message.html().contains(&format!("<a href=\"https://mos.example/c/t{n}\"")), "{n}: {}", message.html());
        assert!(message.text().contains(&format!("<https://mos.example/c/t{n}>")), "{n}: {}", message.text());
        assert!(!message.html().contains(&format!("href=\"{}\"", original.replace('&', "&amp;"))), "{original}");
    }
    // What is not a web link stays as written: mail, a relative address, an image (loading it
    // would tell when the message is opened), and the unsubscribe and preference links.
    for kept in [
        "href=\"mailto:desk@clinic.example\"",
        "href=\"/relative\"",
        "src=\"https://clinic.example/logo.png\"",
        "href=\"https://mos.example/u/tok3n?c=1&amp;k=2\"",
        "href=\"https://mos.example/p/tok3n\"",
    ] {
        assert!(message.html().contains(kept), "{kept}: {}", message.html());
    }
    // The text a reader sees is the content's own: only the addresses change.
    assert!(message.html().contains(">https://clinic.example/faq</a>"), "{}", message.html());

    // Without click addresses, a message (a preview) keeps every link as written; with a number
    // of them other than its links, it is not rendered at all.
    let plain = render(&template, &content(body), &values("Ada"), &essentials()).unwrap();
    assert!(plain.html().contains("href=\"https://clinic.example/faq\""));
    let short = Essentials { clicks: clicks[1..].to_vec(), ..essentials() };
    assert_eq!(
        render(&template, &content(body), &values("Ada"), &short).unwrap_err(),
        RenderError::Clicks { links: 5, addresses: 4 }
    );
}
