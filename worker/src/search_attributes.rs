//! convo's search attributes ([`convo_workflows::ops::SEARCH_ATTRIBUTES`]) in the worker's
//! namespace: registered at start-up, or checked where registration is an admin's task.
//!
//! A workflow that upserts an attribute the namespace does not know fails its workflow task,
//! so the worker does not start polling until every attribute is there.
//!
//! - [`Mode::Register`] (the default): list the namespace's attributes and add the missing
//!   ones through OperatorService, then wait until the namespace lists them. Idempotent: a
//!   second worker, or a restart, adds nothing; two workers racing both succeed. sdk-java's test
//!   server cannot list (its OperatorService only adds), so there every attribute is added, which
//!   it takes again without complaint.
//! - [`Mode::Check`]: only list, and name what is missing. For Temporal Cloud, where attributes
//!   are added in the Cloud UI or with `tcld`, and for clusters whose operators register them.
//!   A register that the server refuses (permission denied, unimplemented) reports the same.

use std::{collections::HashMap, time::Duration};

use convo_workflows::ops::SEARCH_ATTRIBUTES;
use temporalio_client::Client;
use temporalio_common::protos::temporal::api::{
    enums::v1::IndexedValueType,
    operatorservice::v1::{AddSearchAttributesRequest, ListSearchAttributesRequest},
};
use tonic::Code;

/// How the worker makes sure convo's search attributes exist.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Mode {
    /// Add the missing ones (needs OperatorService permissions).
    #[default]
    Register,
    /// Only check, and refuse to start naming the missing ones.
    Check,
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "register" => Ok(Mode::Register),
            "check" => Ok(Mode::Check),
            other => Err(format!("expected `register` or `check`, not `{other}`")),
        }
    }
}

/// Why the attributes could not be made sure of.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SearchAttributeError {
    /// Some are missing and were not (or could not be) registered.
    #[error(
        "namespace {namespace} lacks convo's search attributes {}; {hint}. Register them with: {}",
        .missing.join(", "),
        register_commands(.namespace, .missing)
    )]
    Missing {
        /// The namespace.
        namespace: String,
        /// Their names.
        missing: Vec<String>,
        /// Why they were not registered here.
        hint: String,
    },
    /// One exists with another type (someone registered it by hand).
    #[error("search attribute {name} in namespace {namespace} is {found}, convo needs Keyword")]
    WrongType {
        /// The namespace.
        namespace: String,
        /// The attribute.
        name: String,
        /// Its type there.
        found: String,
    },
    /// The server failed.
    #[error("OperatorService.{call} on namespace {namespace}: {status}")]
    Rpc {
        /// `ListSearchAttributes` or `AddSearchAttributes`.
        call: &'static str,
        /// The namespace.
        namespace: String,
        /// Its answer.
        status: Box<tonic::Status>,
    },
}

/// The `temporal` commands that register `missing` in `namespace`.
fn register_commands(namespace: &str, missing: &[String]) -> String {
    missing
        .iter()
        .map(|name| {
            format!(
                "`temporal operator search-attribute create --namespace {namespace} \
                 --name {name} --type Keyword`"
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What [`ensure`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    /// The attributes it added (empty when all were there).
    pub added: Vec<String>,
}

/// Makes sure every attribute convo's workflows set exists in `namespace`.
pub async fn ensure(
    client: &Client,
    namespace: &str,
    mode: Mode,
) -> Result<Ensured, SearchAttributeError> {
    let wanted: Vec<&str> = SEARCH_ATTRIBUTES.iter().map(|k| k.name()).collect();
    let missing = match list(client, namespace).await? {
        Some(known) => missing_of(namespace, &wanted, &known)?,
        // The server cannot list (sdk-java's test server): add all, it takes repeats.
        None => wanted.iter().map(|n| (*n).to_owned()).collect(),
    };
    if missing.is_empty() {
        return Ok(Ensured { added: Vec::new() });
    }
    if mode == Mode::Check {
        return Err(SearchAttributeError::Missing {
            namespace: namespace.to_owned(),
            missing,
            hint: "the worker runs with --search-attributes check, so it does not add them".into(),
        });
    }
    let request = AddSearchAttributesRequest {
        namespace: namespace.to_owned(),
        search_attributes: missing
            .iter()
            .map(|name| (name.clone(), IndexedValueType::Keyword as i32))
            .collect(),
    };
    match client
        .connection()
        .operator_service()
        .add_search_attributes(tonic::Request::new(request))
        .await
    {
        Ok(_) => {}
        // Another worker registered them first.
        Err(status) if status.code() == Code::AlreadyExists => {}
        Err(status) if matches!(status.code(), Code::PermissionDenied | Code::Unimplemented) => {
            return Err(SearchAttributeError::Missing {
                namespace: namespace.to_owned(),
                missing,
                hint: format!(
                    "the server refused to add them ({}: {}); on Temporal Cloud add them in \
                     the namespace's settings or with `tcld namespace search-attributes add`",
                    status.code(),
                    status.message()
                ),
            });
        }
        Err(status) => {
            return Err(SearchAttributeError::Rpc {
                call: "AddSearchAttributes",
                namespace: namespace.to_owned(),
                status: Box::new(status),
            });
        }
    }
    wait_listed(client, namespace, &wanted).await?;
    tracing::info!(%namespace, added = ?missing, "registered convo's search attributes");
    Ok(Ensured { added: missing })
}

/// The namespace's attributes by name and type; `None` when the server cannot list.
async fn list(
    client: &Client,
    namespace: &str,
) -> Result<Option<HashMap<String, i32>>, SearchAttributeError> {
    let request = ListSearchAttributesRequest { namespace: namespace.to_owned() };
    match client
        .connection()
        .operator_service()
        .list_search_attributes(tonic::Request::new(request))
        .await
    {
        Ok(response) => {
            let r = response.into_inner();
            Ok(Some(r.custom_attributes.into_iter().chain(r.system_attributes).collect()))
        }
        Err(status) if status.code() == Code::Unimplemented => Ok(None),
        Err(status) => Err(SearchAttributeError::Rpc {
            call: "ListSearchAttributes",
            namespace: namespace.to_owned(),
            status: Box::new(status),
        }),
    }
}

/// The wanted attributes `known` lacks; an attribute of another type is an error.
fn missing_of(
    namespace: &str,
    wanted: &[&str],
    known: &HashMap<String, i32>,
) -> Result<Vec<String>, SearchAttributeError> {
    let mut missing = Vec::new();
    for name in wanted {
        match known.get(*name) {
            None => missing.push((*name).to_owned()),
            Some(t) if *t == IndexedValueType::Keyword as i32 => {}
            Some(t) => {
                let found = IndexedValueType::try_from(*t)
                    .map_or_else(|_| t.to_string(), |t| t.as_str_name().to_owned());
                return Err(SearchAttributeError::WrongType {
                    namespace: namespace.to_owned(),
                    name: (*name).to_owned(),
                    found,
                });
            }
        }
    }
    Ok(missing)
}

/// Waits (up to 30 s) until the namespace lists every wanted attribute: a cluster applies an
/// addition asynchronously, and a workflow upserting one before that fails its task.
async fn wait_listed(
    client: &Client,
    namespace: &str,
    wanted: &[&str],
) -> Result<(), SearchAttributeError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let missing = match list(client, namespace).await? {
            Some(known) => missing_of(namespace, wanted, &known)?,
            None => return Ok(()),
        };
        if missing.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(SearchAttributeError::Missing {
                namespace: namespace.to_owned(),
                missing,
                hint: "they were added but the namespace still does not list them after 30 s"
                    .into(),
            });
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_and_mistyped_attributes_are_named() {
        let mut known: HashMap<String, i32> = HashMap::new();
        known.insert("ConvoWorkspace".into(), IndexedValueType::Keyword as i32);
        let missing = missing_of("ns", &["ConvoWorkspace", "ConvoChannel"], &known).unwrap();
        assert_eq!(missing, ["ConvoChannel"]);

        known.insert("ConvoChannel".into(), IndexedValueType::Text as i32);
        let e = missing_of("ns", &["ConvoWorkspace", "ConvoChannel"], &known).unwrap_err();
        assert_eq!(
            e.to_string(),
            "search attribute ConvoChannel in namespace ns is INDEXED_VALUE_TYPE_TEXT, convo \
             needs Keyword"
        );
    }

    #[test]
    fn a_missing_attribute_error_says_how_to_register_it() {
        let e = SearchAttributeError::Missing {
            namespace: "prod".into(),
            missing: vec!["ConvoChannel".into()],
            hint: "check mode".into(),
        };
        let text = e.to_string();
        assert!(text.contains("namespace prod lacks convo's search attributes ConvoChannel"));
        assert!(text.contains(
            "temporal operator search-attribute create --namespace prod --name ConvoChannel \
             --type Keyword"
        ));
    }

    #[test]
    fn modes_parse() {
        assert_eq!("register".parse::<Mode>(), Ok(Mode::Register));
        assert_eq!("check".parse::<Mode>(), Ok(Mode::Check));
        assert!("maybe".parse::<Mode>().is_err());
    }
}
