use super::*;
use serde_json::json;

fn catalog() -> Catalog {
    let attribute =
        |name: &str, kind: AttributeKind| CatalogAttribute { id: AttributeId::new(), name: name.into(), kind };
    Catalog {
        attributes: vec![
            attribute("plan", AttributeKind::text(10).unwrap()),
            attribute("age", AttributeKind::Number),
            attribute("born", AttributeKind::Date),
            attribute("smoker", AttributeKind::Boolean),
            attribute("tier", AttributeKind::choice(&["gold", "silver", "bronze"]).unwrap()),
        ],
        purposes: vec![PurposeId::parse("01890a5d-ac96-774b-bcce-b302099a8057").unwrap()],
    }
}

fn paths(result: Result<Segment, SegmentError>) -> Vec<String> {
    result.expect_err("the definition should be refused").0.into_iter().map(|p| p.path).collect()
}

#[test]
fn a_definition_of_every_kind_of_condition_has_a_fixed_canonical_text_and_its_hash() {
    let input = json!({"all": [
        {"value": 18, "op": "gte", "attribute": "age"},
        {"attribute": "born", "op": "between", "value": ["1960-01-01", "1990-12-31"]},
        {"any": [{"tags": "has_any", "value": ["vip", "new", "vip"]}, {"tags": "has", "value": "staff"}]},
        {"not": {"attribute": "smoker", "op": "equals", "value": true}},
        {"attribute": "tier", "op": "in", "value": ["silver", "gold"]},
        {"attribute": "plan", "op": "starts_with", "value": "ba"},
        {"consent": "live", "purpose": "01890a5d-ac96-774b-bcce-b302099a8057"},
        {"created": "after", "value": "2026-01-31T10:00:00+01:00"}
    ]});
    let catalog = catalog();
    let segment = Segment::from_value(&input, &catalog).unwrap();
    assert_eq!(
        segment.canonical(),
        concat!(
            r#"{"all":[{"any":[{"tags":"has","value":"staff"},{"tags":"has_any","value":["new","vip"]}]},"#,
            r#"{"attribute":"age","op":"gte","value":18.0},"#,
            r#"{"attribute":"born","op":"between","value":["1960-01-01","1990-12-31"]},"#,
            r#"{"attribute":"plan","op":"starts_with","value":"ba"},"#,
            r#"{"attribute":"tier","op":"in","value":["gold","silver"]},"#,
            r#"{"consent":"live","purpose":"01890a5d-ac96-774b-bcce-b302099a8057"},"#,
            r#"{"created":"after","value":"2026-01-31T09:00:00Z"},"#,
            r#"{"not":{"attribute":"smoker","op":"equals","value":true}}]}"#
        )
    );
    assert_eq!(segment.hash().0, <[u8; 32]>::from(Sha256::digest(segment.canonical().as_bytes())));
    // The canonical text is itself a definition with the same canonical text.
    assert_eq!(Segment::parse(segment.canonical(), &catalog).unwrap(), segment);
    // The tree follows the canonical order: the group first, then the conditions by name.
    let Node::All(members) = segment.root() else { panic!("{:?}", segment.root()) };
    assert!(matches!(members[0], Node::Any(_)) && matches!(members[7], Node::Not(_)), "{members:?}");
}

#[test]
fn problems_name_the_path_of_the_offending_node() {
    let c = catalog();
    let d = |v: Value| Segment::from_value(&v, &c);
    assert_eq!(
        paths(d(json!({"all": [{"tags": "has", "value": "a"}, {"attribute": "weight", "op": "gt", "value": 1}]}))),
        ["all[1].attribute"]
    );
    assert_eq!(paths(d(json!({"all": [{"attribute": "age", "op": "gt", "value": "12"}]}))), ["all[0].value"]);
    assert_eq!(paths(d(json!({"any": [{"not": {"attribute": "plan", "op": "gt", "value": "x"}}]}))), ["any[0].not.op"]);
    assert_eq!(paths(d(json!({"attribute": "tier", "op": "in", "value": ["gold", "platinum"]}))), ["value[1]"]);
    assert_eq!(paths(d(json!({"attribute": "plan", "op": "equals", "value": "longer than ten"}))), ["value"]);
    assert_eq!(paths(d(json!({"attribute": "age", "op": "between", "value": [5, 1]}))), ["value"]);
    assert_eq!(paths(d(json!({"attribute": "smoker", "op": "equals", "value": 1}))), ["value"]);
    assert_eq!(paths(d(json!({"attribute": "age", "op": "is_set", "value": 1}))), ["value"]);
    assert_eq!(paths(d(json!({"attribute": "born", "op": "lt", "value": "31/01/2026"}))), ["value"]);
    assert_eq!(paths(d(json!({"consent": "live", "purpose": "01890a5d-ac96-774b-bcce-b302099a8058"}))), ["purpose"]);
    assert_eq!(paths(d(json!({"created": "before", "value": "yesterday"}))), ["value"]);
    assert_eq!(paths(d(json!({"tags": "has", "value": "a\u{0}b"}))), ["value"]);
    assert_eq!(paths(d(json!({"tags": "has", "value": "a", "sql": "1=1"}))), ["sql"]);
    assert_eq!(paths(d(json!({"all": [{"tags": "has", "value": "a", "any": []}]}))), ["all[0]"]);
    assert_eq!(paths(d(json!([]))), [""]);
    // Every problem is reported, not only the first.
    assert_eq!(
        paths(d(json!({"all": [{"attribute": "nope", "op": "equals", "value": 1}, {"tags": "maybe", "value": "x"}]}))),
        ["all[0].attribute", "all[1].tags"]
    );
    assert!(Segment::parse("{not json", &c).is_err());
}

#[test]
fn depth_size_and_length_limits_are_enforced() {
    let c = catalog();
    let mut deep = json!({"tags": "has", "value": "a"});
    for _ in 0..MAX_DEPTH {
        deep = json!({"not": deep});
    }
    assert!(Segment::from_value(&deep, &c).is_ok());
    let deeper = json!({"not": deep});
    assert_eq!(paths(Segment::from_value(&deeper, &c)), ["not.not.not.not.not.not.not.not.not"]);

    let many: Vec<Value> = (0..MAX_NODES).map(|i| json!({"tags": "has", "value": format!("t{i}")})).collect();
    let problems = paths(Segment::from_value(&json!({"any": many}), &c));
    assert_eq!(problems, [format!("any[{}]", MAX_NODES - 1)]);

    let long = "x".repeat(MAX_TEXT + 1);
    assert_eq!(paths(Segment::from_value(&json!({"tags": "has", "value": long}), &c)), ["value"]);
    let list: Vec<String> = (0..=MAX_LIST).map(|i| format!("t{i}")).collect();
    assert_eq!(paths(Segment::from_value(&json!({"tags": "has_all", "value": list}), &c)), ["value"]);
    assert_eq!(paths(Segment::from_value(&json!({"attribute": "age", "op": "gt", "value": 1e16}), &c)), ["value"]);
}

/// A small deterministic generator, so that a failing case can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn random_condition(rng: &mut Rng, depth: usize) -> Value {
    let tags = ["vip", "new", "staff", "b\"q", "\u{e9}t\u{e9}"];
    match rng.below(if depth >= 3 { 7 } else { 10 }) {
        0 => json!({"attribute": "age", "op": rng.pick(&["gt", "lte", "equals"]), "value": rng.below(90)}),
        1 => json!({"attribute": "age", "op": "between", "value": [rng.below(40), 40 + rng.below(40)]}),
        2 => {
            json!({"attribute": "born", "op": "lt", "value": format!("19{:02}-0{}-1{}", rng.below(100), 1 + rng.below(9), rng.below(10))})
        }
        3 => json!({"attribute": *rng.pick(&["plan", "tier", "smoker"]), "op": *rng.pick(&["is_set", "is_not_set"])}),
        4 => json!({"tags": "has_any", "value": [*rng.pick(&tags), *rng.pick(&tags), *rng.pick(&tags)]}),
        5 => json!({"attribute": "tier", "op": "in", "value": [*rng.pick(&["gold", "silver"]), "bronze"]}),
        6 => json!({"consent": *rng.pick(&["live", "not_live"]), "purpose": "01890a5d-ac96-774b-bcce-b302099a8057"}),
        7 => json!({"not": random_condition(rng, depth + 1)}),
        _ => {
            let members: Vec<Value> = (0..rng.below(4)).map(|_| random_condition(rng, depth + 1)).collect();
            json!({*rng.pick(&["all", "any"]): members})
        }
    }
}

/// The same definition written differently: keys in a random order, random whitespace, the
/// members of every group shuffled, and numbers spelled as integers, decimals or exponents.
fn rewrite(value: &Value, rng: &mut Rng, in_group: bool) -> String {
    let space = |rng: &mut Rng| [" ", "", "\n  ", "\t"][rng.below(4)].to_owned();
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            for i in (1..keys.len()).rev() {
                keys.swap(i, rng.below(i + 1));
            }
            let parts: Vec<String> = keys
                .into_iter()
                .map(|k| {
                    let group = k == "all" || k == "any";
                    format!("{}{}{}:{}{}", space(rng), json!(k), space(rng), space(rng), rewrite(&map[k], rng, group))
                })
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(items) => {
            let mut items: Vec<&Value> = items.iter().collect();
            if in_group {
                for i in (1..items.len()).rev() {
                    items.swap(i, rng.below(i + 1));
                }
            }
            let parts: Vec<String> =
                items.into_iter().map(|v| format!("{}{}", space(rng), rewrite(v, rng, false))).collect();
            format!("[{}{}]", parts.join(","), space(rng))
        }
        Value::Number(n) => match (n.as_u64(), rng.below(3)) {
            (Some(i), 1) => format!("{i}.0"),
            (Some(i), 2) => format!("{i}0e-1"),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

#[test]
fn the_same_definition_written_differently_has_the_same_hash_and_a_changed_one_does_not() {
    let c = catalog();
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let original = random_condition(&mut rng, 0);
        let segment = Segment::from_value(&original, &c).unwrap_or_else(|e| panic!("seed {seed}: {e} in {original}"));
        let tree = segment.root().clone();
        for _ in 0..5 {
            let text = rewrite(&original, &mut rng, false);
            let again = Segment::parse(&text, &c).unwrap_or_else(|e| panic!("seed {seed}: {e} in {text}"));
            assert_eq!(again.hash(), segment.hash(), "seed {seed}: {text}");
            assert_eq!(again.canonical(), segment.canonical(), "seed {seed}");
            assert_eq!(again.root(), &tree, "seed {seed}: one hash, one tree");
        }
        // Wrapping it in `not` changes its meaning, and so its hash.
        let negated = Segment::from_value(&json!({"not": original}), &c).unwrap();
        assert_ne!(negated.hash(), segment.hash(), "seed {seed}");
        // The canonical text reads back as itself.
        assert_eq!(Segment::parse(segment.canonical(), &c).unwrap().canonical(), segment.canonical());
    }
}

#[test]
fn a_different_value_or_operator_gives_a_different_hash() {
    let c = catalog();
    let hash = |v: Value| Segment::from_value(&v, &c).unwrap().hash();
    let base = hash(json!({"attribute": "age", "op": "gt", "value": 18}));
    assert_ne!(base, hash(json!({"attribute": "age", "op": "gt", "value": 19})));
    assert_ne!(base, hash(json!({"attribute": "age", "op": "gte", "value": 18})));
    assert_ne!(
        hash(json!({"all": [{"tags": "has", "value": "a"}]})),
        hash(json!({"any": [{"tags": "has", "value": "a"}]}))
    );
    assert_ne!(hash(json!({"tags": "has", "value": "A"})), hash(json!({"tags": "has", "value": "a"})));
}
