//! `/docs`: the OpenAPI document as one HTML page, with no script. Every operation shows its
//! parameters, its body's fields and its answers; every field its type and constraints; every
//! schema is listed at the end. Descriptions are Markdown, of which the document uses code
//! spans, emphasis and paragraphs.

use std::fmt::Write as _;

use serde_json::{Map, Value};

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Markdown's code spans, `**strong**` and paragraphs, on escaped text.
fn markdown(text: &str) -> String {
    let mut html = String::new();
    for paragraph in text.split("\n\n").map(str::trim).filter(|p| !p.is_empty()) {
        let joined = paragraph.lines().map(str::trim).collect::<Vec<_>>().join(" ");
        let mut out = String::new();
        for (i, piece) in joined.split('`').enumerate() {
            if i % 2 == 1 {
                let _ = write!(out, "<code>{}</code>", escape(piece));
            } else {
                for (j, plain) in piece.split("**").enumerate() {
                    let plain = escape(plain);
                    if j % 2 == 1 {
                        let _ = write!(out, "<strong>{plain}</strong>");
                    } else {
                        out.push_str(&plain);
                    }
                }
            }
        }
        let _ = write!(html, "<p>{out}</p>");
    }
    html
}

fn str_of<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// The schema a `$ref` names, by its component name.
fn ref_name(schema: &Value) -> Option<&str> {
    str_of(schema, "$ref").and_then(|r| r.rsplit('/').next())
}

/// A schema's type in words, linking to named schemas.
fn type_of(schema: &Value) -> String {
    if let Some(name) = ref_name(schema) {
        return format!("<a href=\"#schema-{name}\">{name}</a>");
    }
    if let Some(variants) = schema.get("oneOf").and_then(Value::as_array) {
        return variants.iter().map(type_of).collect::<Vec<_>>().join(" or ");
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    let nullable = types.contains(&"null");
    let mut words: Vec<String> = types
        .iter()
        .filter(|t| **t != "null")
        .map(|t| match (*t, schema.get("items")) {
            ("array", Some(items)) => format!("array of {}", type_of(items)),
            (t, _) => match str_of(schema, "format") {
                Some(format) => format!("{t} ({format})"),
                None => t.to_owned(),
            },
        })
        .collect();
    if words.is_empty() {
        words.push("any JSON".to_owned());
    }
    let text = words.join(" or ");
    if nullable {
        format!("{text} or null")
    } else {
        text
    }
}

/// What a value must be beyond its type.
fn constraints(schema: &Value) -> String {
    let mut rules = Vec::new();
    let number = |key: &str| schema.get(key).and_then(Value::as_i64);
    match (number("minLength"), number("maxLength")) {
        (Some(min), Some(max)) => rules.push(format!("{min} to {max} characters")),
        (Some(min), None) => rules.push(format!("at least {min} characters")),
        (None, Some(max)) => rules.push(format!("at most {max} characters")),
        (None, None) => {}
    }
    match (number("minimum"), number("maximum")) {
        (Some(min), Some(max)) => rules.push(format!("{min} to {max}")),
        (Some(min), None) => rules.push(format!("at least {min}")),
        (None, Some(max)) => rules.push(format!("at most {max}")),
        (None, None) => {}
    }
    if let Some(pattern) = str_of(schema, "pattern") {
        rules.push(format!("matches <code>{}</code>", escape(pattern)));
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        let values: Vec<String> =
            values.iter().map(|v| format!("<code>{}</code>", escape(&v.to_string().replace('"', "")))).collect();
        rules.push(format!("one of {}", values.join(", ")));
    }
    if let Some(example) = schema.get("example") {
        rules.push(format!("e.g. <code>{}</code>", escape(&example.to_string())));
    }
    rules.join("; ")
}

/// The fields of an object schema as table rows.
fn field_rows(schema: &Value) -> String {
    let required: Vec<&str> =
        schema.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let mut rows = String::new();
    for (name, field) in schema.get("properties").and_then(Value::as_object).into_iter().flatten() {
        let _ = write!(
            rows,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            escape(name),
            type_of(field),
            if required.contains(&name.as_str()) { "required" } else { "optional" },
            str_of(field, "description").map(markdown).unwrap_or_default(),
            constraints(field),
        );
    }
    rows
}

fn fields_table(schema: &Value) -> String {
    let rows = field_rows(schema);
    if rows.is_empty() {
        return String::new();
    }
    format!("<table><tr><th>field</th><th>type</th><th></th><th>rules</th></tr>{rows}</table>")
}

fn schema_section(name: &str, schema: &Value) -> String {
    let mut html = format!("<h3 id=\"schema-{0}\">{0}</h3>", escape(name));
    if let Some(description) = str_of(schema, "description") {
        html.push_str(&markdown(description));
    }
    match schema.get("oneOf").and_then(Value::as_array) {
        Some(variants) => {
            html.push_str("<p>One of:</p>");
            for variant in variants {
                html.push_str(&str_of(variant, "description").map(markdown).unwrap_or_default());
                html.push_str(&fields_table(variant));
            }
        }
        None if schema.get("properties").is_some() => html.push_str(&fields_table(schema)),
        None => {
            let _ = write!(html, "<p>{}; {}</p>", type_of(schema), constraints(schema));
        }
    }
    html
}

fn parameters(op: &Value) -> String {
    let mut rows = String::new();
    for p in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
        let schema = p.get("schema").cloned().unwrap_or_default();
        let _ = write!(
            rows,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td></tr>",
            escape(str_of(p, "name").unwrap_or_default()),
            escape(str_of(p, "in").unwrap_or_default()),
            type_of(&schema),
            if p.get("required").and_then(Value::as_bool).unwrap_or(false) { "required" } else { "optional" },
            str_of(p, "description").map(markdown).unwrap_or_default(),
            constraints(&schema),
        );
    }
    if rows.is_empty() {
        return rows;
    }
    format!(
        "<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>type</th><th></th><th>rules</th></tr>{rows}</table>"
    )
}

fn body(op: &Value, schemas: &Map<String, Value>) -> String {
    let Some(schema) = op.pointer("/requestBody/content/application~1json/schema") else { return String::new() };
    let mut html = format!("<h4>Body</h4><p>JSON: {}</p>", type_of(schema));
    if let Some(named) = ref_name(schema).and_then(|n| schemas.get(n)) {
        html.push_str(&fields_table(named));
    }
    html
}

fn responses(op: &Value) -> String {
    let mut rows = String::new();
    for (status, response) in op.get("responses").and_then(Value::as_object).into_iter().flatten() {
        let content = response.get("content").and_then(Value::as_object);
        let kinds: Vec<String> = content
            .into_iter()
            .flatten()
            .map(|(media, c)| match c.get("schema") {
                Some(schema) => format!("{} <code>{}</code>", type_of(schema), escape(media)),
                None => format!("<code>{}</code>", escape(media)),
            })
            .collect();
        let _ = write!(
            rows,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(status),
            str_of(response, "description").map(markdown).unwrap_or_default(),
            kinds.join("<br>"),
        );
    }
    format!("<h4>Answers</h4><table><tr><th>status</th><th>when</th><th>body</th></tr>{rows}</table>")
}

/// The whole page.
pub fn render(doc: &Value) -> String {
    let empty = Map::new();
    let schemas = doc.pointer("/components/schemas").and_then(Value::as_object).unwrap_or(&empty);
    let mut html = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Marketing OS API</title>\
         <link rel=\"stylesheet\" href=\"/docs.css\"></head><body><main>",
    );
    let _ = write!(html, "<h1>{}</h1>", escape(doc.pointer("/info/title").and_then(Value::as_str).unwrap_or("API")));
    html.push_str(&doc.pointer("/info/description").and_then(Value::as_str).map(markdown).unwrap_or_default());
    html.push_str("<p>Machine-readable: <a href=\"/openapi.json\">/openapi.json</a> (OpenAPI 3.1).</p>");
    for (path, item) in doc.get("paths").and_then(Value::as_object).into_iter().flatten() {
        for method in METHODS {
            let Some(op) = item.get(method) else { continue };
            let _ = write!(
                html,
                "<section><h2><span class=\"m\">{}</span><code>{}</code></h2>",
                method.to_uppercase(),
                escape(path)
            );
            if let Some(summary) = str_of(op, "summary") {
                let _ = write!(html, "<div class=\"summary\">{}</div>", markdown(summary));
            }
            html.push_str(&str_of(op, "description").map(markdown).unwrap_or_default());
            if op.get("security").is_some() {
                html.push_str("<p>Needs a session: the <code>__Host-mos_session</code> cookie or <code>Authorization: Bearer</code>.</p>");
            }
            html.push_str(&parameters(op));
            html.push_str(&body(op, schemas));
            html.push_str(&responses(op));
            html.push_str("</section>");
        }
    }
    html.push_str("<h2 id=\"schemas\">Schemas</h2>");
    for (name, schema) in schemas {
        html.push_str(&schema_section(name, schema));
    }
    html.push_str("</main></body></html>");
    html
}

#[cfg(test)]
mod tests {
    use super::markdown;

    #[test]
    fn descriptions_render_code_spans_emphasis_and_paragraphs_escaped() {
        assert_eq!(
            markdown("Use `a<b>` **now**.\nSame paragraph.\n\nNext"),
            "<p>Use <code>a&lt;b&gt;</code> <strong>now</strong>. Same paragraph.</p><p>Next</p>"
        );
    }
}
