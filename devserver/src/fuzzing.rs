//! Entry points for the `fuzz/` targets: what the server parses from clients, reached
//! without a server. Hidden from the docs; not an API.
#![doc(hidden)]

use temporalio_protos::temporal::api::enums::v1::IndexedValueType;

use crate::engine::visibility;

/// Parses `query` as a list/count visibility query of the `default` namespace, whose registry
/// holds one custom attribute of every type (as convo registers its own), and any RFC 3339
/// time in it. Returns the parse error, if any; it must never panic.
pub fn visibility_query(query: &str) -> Result<(), String> {
    let mut registry = visibility::Registry::new();
    let custom = registry.entry(crate::DEFAULT_NAMESPACE.to_owned()).or_default();
    for (name, ty) in [
        ("CustomKeywordField", IndexedValueType::Keyword),
        ("CustomTextField", IndexedValueType::Text),
        ("CustomIntField", IndexedValueType::Int),
        ("CustomDoubleField", IndexedValueType::Double),
        ("CustomBoolField", IndexedValueType::Bool),
        ("CustomDatetimeField", IndexedValueType::Datetime),
        ("CustomKeywordListField", IndexedValueType::KeywordList),
    ] {
        custom.insert(name.to_owned(), ty);
    }
    let _ = visibility::parse_rfc3339(query);
    visibility::parse(query, &registry, crate::DEFAULT_NAMESPACE).map(|_| ())
}
