//! Names, owners, descriptions and scopes through `TokenName::new`, `apply`, `modify` and
//! `list`: never a panic; what is accepted is trimmed, non-empty and within the limits; what
//! is refused is an invalid-input error (or a taken name) and leaves the store unchanged.

#![no_main]

mod common;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use tollgate::{
    Error, ErrorKind, ListOptions, MAX_DESCRIPTION_CHARS, MAX_NAME_CHARS, MAX_SCOPE_CHARS,
    MAX_SCOPES, MemoryStore, NewToken, Query, TokenManager, TokenName, TokenUpdate, Verification,
};

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    owner: &'a str,
    name: &'a str,
    description: &'a str,
    scopes: Vec<&'a str>,
    /// Rename, describe and rescope an existing token with the same values too.
    modify: bool,
}

fn description_ok(description: &str) -> bool {
    let trimmed = description.trim();
    trimmed.chars().count() <= MAX_DESCRIPTION_CHARS
        && !trimmed
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t')
}

fn scope_ok(scope: &str) -> bool {
    !scope.is_empty()
        && scope.chars().count() <= MAX_SCOPE_CHARS
        && scope
            .bytes()
            .all(|b| matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E))
}

fn scopes_ok(scopes: &[&str]) -> bool {
    let mut distinct: Vec<&str> = scopes.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    scopes.iter().all(|s| scope_ok(s)) && distinct.len() <= MAX_SCOPES
}

/// Everything the store holds for the owners that can be touched, in a comparable form.
async fn snapshot(manager: &TokenManager, owners: &[&str]) -> Vec<String> {
    let mut all = Vec::new();
    for owner in owners {
        let Ok(page) = manager
            .list(
                owner,
                ListOptions {
                    limit: Some(1000),
                    ..Default::default()
                },
            )
            .await
        else {
            continue;
        };
        for r in page.items {
            all.push(format!(
                "{owner}|{}|{}|{:?}|{:?}|{}|{}",
                r.id, r.name, r.description, r.scopes, r.enabled, r.version
            ));
        }
    }
    all
}

fuzz_target!(|input: Input<'_>| {
    let Input {
        owner,
        name,
        description,
        scopes,
        modify,
    } = input;

    let name_ok = match TokenName::new(name) {
        Ok(valid) => {
            assert_eq!(valid.as_str(), name.trim());
            assert!(!valid.as_str().is_empty());
            assert!(valid.as_str().chars().count() <= MAX_NAME_CHARS);
            assert!(!valid.as_str().chars().any(char::is_control));
            true
        }
        Err(err) => {
            assert_eq!(Error::from(err).kind(), ErrorKind::InvalidInput);
            false
        }
    };
    // Owners follow the rules of names.
    let owner_ok = TokenName::new(owner).is_ok();
    let expected = owner_ok && name_ok && description_ok(description) && scopes_ok(&scopes);

    common::block_on(async {
        let store = MemoryStore::new();
        let manager = TokenManager::new(store);
        let existing = manager
            .apply("acme", NewToken::new("existing").scopes(["read"]))
            .await
            .unwrap();
        manager
            .apply("default", NewToken::new("Other Name"))
            .await
            .unwrap();

        match manager.list(owner, ListOptions::default()).await {
            Ok(_) => assert!(owner_ok, "list accepted the owner {owner:?}"),
            Err(err) => {
                assert!(!owner_ok, "list refused the owner {owner:?}: {err:?}");
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
            }
        }

        let owners = ["acme", "default", owner];
        let before = snapshot(&manager, &owners).await;
        let request = NewToken::new(name)
            .description(description)
            .scopes(scopes.iter().copied());
        match manager.apply(owner, request).await {
            Ok(issued) => {
                assert!(
                    expected,
                    "apply accepted {owner:?} {name:?} {description:?} {scopes:?}"
                );
                let record = &issued.record;
                assert_eq!(record.owner, owner.trim());
                assert!(!record.owner.is_empty());
                assert!(record.owner.chars().count() <= MAX_NAME_CHARS);
                assert_eq!(record.name, name.trim());
                assert_eq!(record.description, description.trim());
                assert!(record.scopes.windows(2).all(|w| w[0] < w[1]));
                assert!(record.scopes.iter().all(|s| scope_ok(s)));
                let mut given: Vec<&str> = scopes.clone();
                given.sort_unstable();
                given.dedup();
                assert_eq!(record.scopes, given);
                assert_eq!(
                    manager.get(owner, record.id).await.unwrap().id,
                    record.id,
                    "an issued token cannot be read back"
                );
                let listed = manager
                    .list(
                        owner,
                        ListOptions {
                            limit: Some(1000),
                            ..Default::default()
                        },
                    )
                    .await
                    .unwrap();
                assert!(listed.items.iter().any(|r| r.id == record.id));
                if Query::new(&record.name).is_some() {
                    let found = manager
                        .list(
                            owner,
                            ListOptions {
                                query: Some(record.name.clone()),
                                limit: Some(1000),
                                ..Default::default()
                            },
                        )
                        .await
                        .unwrap();
                    assert!(
                        found.items.iter().any(|r| r.id == record.id),
                        "searching for its own name {name:?} does not find the token"
                    );
                }
                let verified = manager.verify(issued.token.expose_secret()).await.unwrap();
                assert!(matches!(verified, Verification::Valid(_)));
            }
            Err(Error::NameTaken { .. }) => {
                assert!(expected, "a name conflict reported before invalid input");
                assert!(
                    matches!(owner.trim(), "acme" | "default"),
                    "name taken for an owner {owner:?} without tokens"
                );
                assert_eq!(before, snapshot(&manager, &owners).await);
            }
            Err(err) => {
                assert!(!expected, "apply refused valid input: {err:?}");
                assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
                assert_eq!(
                    before,
                    snapshot(&manager, &owners).await,
                    "a failed apply changed the store"
                );
            }
        }

        if modify {
            let before = snapshot(&manager, &owners).await;
            let update = TokenUpdate::default()
                .name(name)
                .description(description)
                .scopes(scopes.iter().copied());
            match manager.modify("acme", existing.record.id, update).await {
                Ok(record) => {
                    assert!(name_ok && description_ok(description) && scopes_ok(&scopes));
                    assert_eq!(record.name, name.trim());
                    assert_eq!(record.description, description.trim());
                }
                Err(Error::NameTaken { .. }) => {
                    assert_eq!(before, snapshot(&manager, &owners).await);
                }
                Err(err) => {
                    assert!(
                        !(name_ok && description_ok(description) && scopes_ok(&scopes)),
                        "modify refused valid input: {err:?}"
                    );
                    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err:?}");
                    assert_eq!(
                        before,
                        snapshot(&manager, &owners).await,
                        "a failed modify changed the store"
                    );
                }
            }
        }
    });
});
