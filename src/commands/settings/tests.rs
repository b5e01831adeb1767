//! `convo workspace set-*|top-up|show` against a store in a temporary directory.

use crate::commands::admin::tests::{run, store_args};

async fn acme() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    run(dir.path(), &["workspace", "create", "acme"]).await.unwrap();
    dir
}

/// The message of a failed command, cause chain included.
async fn error(dir: &std::path::Path, argv: &[&str]) -> String {
    format!("{:#}", run(dir, argv).await.expect_err("the command should fail"))
}

#[tokio::test]
async fn workspace_configuration_lands_in_the_store() {
    let dir = acme().await;
    let d = dir.path();
    let out = run(
        d,
        &[
            "workspace",
            "set-rates",
            "--workspace",
            "acme",
            "--channel",
            "sms",
            "--conversation-unit",
            "40",
            "--message",
            "7",
            "--newsletter",
            "3",
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, "sms rates of acme: conversation_unit 40, message 7, newsletter 3");
    let out = run(
        d,
        &[
            "workspace",
            "set-policy",
            "--workspace",
            "acme",
            "--channel",
            "whatsapp",
            "--mode",
            "fixed",
            "--window-secs",
            "3600",
        ],
    )
    .await
    .unwrap();
    assert!(out.contains("gate window, fixed window of 3600 s"), "{out}");
    run(
        d,
        &[
            "workspace",
            "set-compliance",
            "--workspace",
            "acme",
            "--help-text",
            "Acme support: help@acme.test. Reply STOP to opt out.",
        ],
    )
    .await
    .unwrap();
    run(
        d,
        &[
            "template",
            "add",
            "--workspace",
            "acme",
            "--name",
            "still_there",
            "--channel",
            "whatsapp",
            "--language",
            "en_US",
            "--body",
            "Still there, {{1}}?",
            "--variable",
            "1",
        ],
    )
    .await
    .unwrap();
    let out = run(
        d,
        &[
            "workspace",
            "set-ping",
            "--workspace",
            "acme",
            "--after-secs",
            "1800",
            "--template",
            "still_there",
        ],
    )
    .await
    .unwrap();
    assert_eq!(out, "inactivity ping of acme: after 1800 s, template still_there");
    let out = run(
        d,
        &[
            "workspace",
            "top-up",
            "--workspace",
            "acme",
            "--amount",
            "500",
            "--reason",
            "invoice 42",
            "--by",
            "alice",
            "--idempotency-key",
            "inv-42",
        ],
    )
    .await
    .unwrap();
    assert!(out.contains("of 500 to acme by operator alice: balance free 500"), "{out}");
    // The same key again credits nothing.
    let again = run(
        d,
        &[
            "workspace",
            "top-up",
            "--workspace",
            "acme",
            "--amount",
            "500",
            "--reason",
            "invoice 42",
            "--by",
            "alice",
            "--idempotency-key",
            "inv-42",
        ],
    )
    .await
    .unwrap();
    assert_eq!(again, out);

    let shown: serde_json::Value =
        serde_json::from_str(&run(d, &["workspace", "show", "--workspace", "acme"]).await.unwrap())
            .unwrap();
    let s = &shown["settings"];
    assert_eq!(
        s["rates"]["sms"],
        serde_json::json!({"conversation_unit": 40, "message": 7, "newsletter": 3})
    );
    assert_eq!(
        s["policies"]["whatsapp"]["overrides"],
        serde_json::json!({"mode": "fixed", "window_secs": 3600})
    );
    assert_eq!(s["policies"]["whatsapp"]["effective"]["mode"], "fixed");
    assert_eq!(s["compliance"]["help"], "Acme support: help@acme.test. Reply STOP to opt out.");
    assert_eq!(
        s["inactivity_ping"],
        serde_json::json!({"after_secs": 1800, "template": "still_there"})
    );
    assert_eq!(shown["balance"], serde_json::json!({"free": 500, "reserved": 0, "total": 500}));
    assert_eq!(shown["top_ups"][0]["by"], serde_json::json!({"kind": "operator", "id": "alice"}));
    assert_eq!(shown["top_ups"][0]["reason"], "invoice 42");
    assert_eq!(shown["top_ups"].as_array().unwrap().len(), 1);

    // What a session opening now is configured with.
    let store = store_args(d).open().await.unwrap();
    let settings = store.workspace("acme").await.unwrap().settings;
    store.close().await;
    let wa = settings.config_for(convo_domain::Channel::Whatsapp).unwrap();
    assert_eq!((wa.policy.mode, wa.policy.window_secs), (convo_domain::WindowMode::Fixed, 3600));
    assert_eq!(settings.config_for(convo_domain::Channel::Sms).unwrap().rates.message.minor(), 7);

    let out = run(d, &["workspace", "set-ping", "--workspace", "acme", "--off"]).await.unwrap();
    assert_eq!(out, "inactivity ping of acme: off");
    let out = run(d, &["workspace", "set-policy", "--workspace", "acme", "--channel", "whatsapp"])
        .await
        .unwrap();
    assert!(out.contains("sliding window of 86400 s"), "defaults restored: {out}");
}

#[tokio::test]
async fn invalid_configuration_names_the_flag() {
    let dir = acme().await;
    let d = dir.path();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "workspace",
                "set-rates",
                "--workspace",
                "acme",
                "--channel",
                "fax",
                "--conversation-unit",
                "1",
                "--message",
                "1",
                "--newsletter",
                "1",
            ],
            "--channel: unknown channel \"fax\"",
        ),
        (
            &[
                "workspace",
                "set-rates",
                "--workspace",
                "acme",
                "--channel",
                "sms",
                "--conversation-unit",
                "9223372036854775808",
                "--message",
                "1",
                "--newsletter",
                "1",
            ],
            "--conversation-unit: must be at most",
        ),
        (
            &[
                "workspace",
                "set-policy",
                "--workspace",
                "acme",
                "--channel",
                "sms",
                "--window-secs",
                "0",
            ],
            "--window-secs: must be positive",
        ),
        (
            &[
                "workspace",
                "set-policy",
                "--workspace",
                "acme",
                "--channel",
                "messenger",
                "--human-agent-secs",
                "60",
            ],
            "--human-agent-secs: must be 0 or at least window_secs",
        ),
        (
            &[
                "workspace",
                "set-policy",
                "--workspace",
                "acme",
                "--channel",
                "sms",
                "--mode",
                "elastic",
            ],
            "--mode",
        ),
        (
            &["workspace", "set-compliance", "--workspace", "acme", "--opt-out-confirmation", "  "],
            "--opt-out-confirmation: must not be empty",
        ),
        (&["workspace", "set-compliance", "--workspace", "acme"], "give --help-text"),
        (
            &["workspace", "set-ping", "--workspace", "acme", "--after-secs", "0", "--text", "hi"],
            "--after-secs: must be positive",
        ),
        (
            &["workspace", "set-ping", "--workspace", "acme", "--after-secs", "60"],
            "--text: give text or template",
        ),
        (
            &[
                "workspace",
                "set-ping",
                "--workspace",
                "acme",
                "--after-secs",
                "60",
                "--template",
                "nope",
            ],
            "--template: no template \"nope\"",
        ),
        (
            &[
                "workspace",
                "top-up",
                "--workspace",
                "acme",
                "--amount",
                "0",
                "--reason",
                "r",
                "--by",
                "alice",
            ],
            "--amount: must be positive",
        ),
        (
            &[
                "workspace",
                "top-up",
                "--workspace",
                "acme",
                "--amount",
                "5",
                "--reason",
                " ",
                "--by",
                "alice",
            ],
            "--reason: must not be empty",
        ),
        (&["workspace", "top-up", "--workspace", "acme", "--amount", "5", "--reason", "r"], "--by"),
        (&["workspace", "show", "--workspace", "ghost"], "workspace ghost not found"),
    ];
    for (argv, expected) in cases {
        let message = error(d, argv).await;
        assert!(message.contains(expected), "{argv:?}: {message}");
    }
}
