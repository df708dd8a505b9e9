//! The token lifecycle on the embedded redb store: apply, search, verify, regenerate with a
//! grace period, disable, delete.
//!
//! Run with `cargo run -p example-basic`; it works in a temporary file and prints each step.

use tollgate::jiff::SignedDuration;
use tollgate::{ListOptions, NewToken, Regenerate, TokenManager, TokenUpdate, Verification};
use tollgate_redb::RedbStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::temp_dir().join(format!("tollgate-example-{}.redb", std::process::id()));
    let manager = TokenManager::new(RedbStore::open(&path)?);
    let owner = "acme";

    // Apply: the plaintext is in `issued.token`, and nowhere else.
    let issued = manager
        .apply(
            owner,
            NewToken::new("GitHub Actions deploy")
                .scopes(["deploy"])
                .expires_in(SignedDuration::from_hours(24 * 90)),
        )
        .await?;
    manager
        .apply(owner, NewToken::new("billing-service"))
        .await?;
    println!("issued {} ({})", issued.record.name, issued.record.id);

    // The token file offered right after apply carries the secret.
    let file = issued.token_file(manager.now());
    println!("token file holds the secret: {}", file.secret_included());

    // Fuzzy search: an abbreviation and a typo.
    for query in ["gad", "biling"] {
        let page = manager
            .list(
                owner,
                ListOptions {
                    query: Some(query.into()),
                    ..Default::default()
                },
            )
            .await?;
        let names: Vec<_> = page.items.iter().map(|r| r.name.as_str()).collect();
        println!("search {query:?}: {names:?}");
    }

    // Verify, as a request guard would.
    let secret = issued.token.expose_secret();
    println!(
        "verify: valid = {}",
        manager.verify(secret).await?.is_valid()
    );

    // Regenerate with a grace period: both secrets work for ten minutes.
    let rotated = manager
        .regenerate(
            owner,
            issued.record.id,
            Regenerate::default().grace(SignedDuration::from_mins(10)),
        )
        .await?;
    println!(
        "after regenerate: old valid = {}, new valid = {}",
        manager.verify(secret).await?.is_valid(),
        manager
            .verify(rotated.token.expose_secret())
            .await?
            .is_valid()
    );

    // Disable: fails at once.
    manager
        .modify(
            owner,
            issued.record.id,
            TokenUpdate::default().enabled(false),
        )
        .await?;
    let outcome = manager.verify(rotated.token.expose_secret()).await?;
    println!(
        "after disable: {}",
        outcome.failure_reason().unwrap_or_default()
    );

    // Delete: irreversible; the token is unknown from now on.
    manager.delete(owner, issued.record.id).await?;
    let outcome = manager.verify(rotated.token.expose_secret()).await?;
    assert_eq!(outcome, Verification::Unknown);
    println!(
        "after delete: {}",
        outcome.failure_reason().unwrap_or_default()
    );

    drop(manager);
    std::fs::remove_file(&path)?;
    Ok(())
}
