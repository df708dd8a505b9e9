//! What the management API answers: one view of a token, shared with the CLI's `--json`.

use serde::{Deserialize, Serialize};
use tollgate::jiff::Timestamp;
use tollgate::{Issued, Page, TokenId, TokenRecord};

/// A token's state at one instant, as lists and consoles show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    /// Enabled and unexpired: it verifies.
    Active,
    /// Active, and its previous secret still works too, until `grace_until`.
    Grace,
    /// Disabled: it fails verification until enabled again.
    Disabled,
    /// Past its expiry.
    Expired,
}

impl TokenStatus {
    /// The status of `record` at `now`.
    pub fn of(record: &TokenRecord, now: Timestamp) -> Self {
        if !record.enabled {
            Self::Disabled
        } else if record.is_expired_at(now) {
            Self::Expired
        } else if record
            .previous_secret
            .as_ref()
            .is_some_and(|p| now < p.valid_until)
        {
            Self::Grace
        } else {
            Self::Active
        }
    }

    /// The lower-case word: `active`, `grace`, `disabled`, `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Grace => "grace",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
        }
    }
}

/// A token as the REST API, the console and the CLI's `--json` show it: everything but its
/// secret and hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "id": "5c0d8a7e4b1f4e0f9a3c2b1d0e9f8a7b", "owner": "default", "name": "CI deploy",
    "description": "Pushes releases", "scopes": ["deploy"], "enabled": true, "status": "active",
    "hint": "Qe1a", "created_at": "2026-11-27T10:00:00Z", "updated_at": "2026-11-27T10:00:00Z",
    "expires_at": "2027-02-25T10:00:00Z", "last_used_at": null, "grace_until": null
}))]
pub struct TokenView {
    /// 32 lower-case hexadecimal characters.
    #[schema(value_type = String, pattern = "^[0-9a-f]{32}$")]
    pub id: TokenId,
    /// The account or tenant the token belongs to.
    pub owner: String,
    /// Unique per owner, compared case-insensitively.
    pub name: String,
    /// Empty when none was given.
    pub description: String,
    /// Sorted, without duplicates.
    pub scopes: Vec<String>,
    /// Whether the token may be used.
    pub enabled: bool,
    /// Its state now: `active`, `grace`, `disabled` or `expired`.
    pub status: TokenStatus,
    /// The token's last characters, to tell it apart from others; not secret. Empty for
    /// tokens issued before hints were kept.
    pub hint: String,
    /// When it was issued (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    /// When it last changed.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    /// When it stops working; `null` for never.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Timestamp>,
    /// When it last verified; `null` for never.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub last_used_at: Option<Timestamp>,
    /// After a regeneration with a grace period: until when the previous secret works.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub grace_until: Option<Timestamp>,
}

impl TokenView {
    /// The view of `record` at `now`.
    pub fn new(record: &TokenRecord, now: Timestamp) -> Self {
        Self {
            id: record.id,
            owner: record.owner.clone(),
            name: record.name.clone(),
            description: record.description.clone(),
            scopes: record.scopes.clone(),
            enabled: record.enabled,
            status: TokenStatus::of(record, now),
            hint: record.hint.clone(),
            created_at: record.created_at,
            updated_at: record.updated_at,
            expires_at: record.expires_at,
            last_used_at: record.last_used_at,
            grace_until: record
                .previous_secret
                .as_ref()
                .map(|p| p.valid_until)
                .filter(|until| now < *until),
        }
    }
}

/// A token just issued or regenerated, with its secret, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedView {
    /// The token's record.
    #[serde(flatten)]
    pub record: TokenView,
    /// The secret token. It is not stored: keep it now.
    #[schema(example = "tg_2UxVb3mPq8RkT1sWn4Yc7Zd0Fh5Jg9Lk6Mp2Nr8Qt3Vx1By0Qe1a7Z")]
    pub token: String,
}

impl IssuedView {
    /// The view of `issued` at `now`.
    pub fn new(issued: &Issued, now: Timestamp) -> Self {
        Self {
            record: TokenView::new(&issued.record, now),
            token: issued.token.expose_secret().to_owned(),
        }
    }
}

/// One page of tokens.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PageView {
    /// Newest first, or best match first with a query.
    pub items: Vec<TokenView>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

impl PageView {
    /// The view of `page` at `now`.
    pub fn new(page: &Page, now: Timestamp) -> Self {
        Self {
            items: page.items.iter().map(|r| TokenView::new(r, now)).collect(),
            next_cursor: page.next_cursor.clone(),
        }
    }
}

/// The body of every failed request: `{"error": {"code": "…", "message": "…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({"error": {"code": "name_taken", "message": "a token named \"CI deploy\" already exists"}}))]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable code such as `name_taken`, `not_found`, `invalid_name`.
    pub code: String,
    /// One sentence for people.
    pub message: String,
}

/// The token file (`tollgate-token-file`, version 1), as downloads answer it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(example = json!({
    "format": "tollgate-token-file", "version": 1, "exported_at": "2026-11-27T10:00:00Z",
    "token": {"id": "5c0d8a7e4b1f4e0f9a3c2b1d0e9f8a7b", "owner": "default", "name": "CI deploy",
              "description": "", "scopes": ["deploy"], "enabled": true,
              "created_at": "2026-11-27T10:00:00Z", "updated_at": "2026-11-27T10:00:00Z",
              "expires_at": null, "last_used_at": null, "hint": "Qe1a"},
    "secret_included": false, "secret": null,
    "note": "The secret is not included: only a hash of it is stored, so it cannot be shown again."
}))]
pub struct TokenFileView {
    /// Always `tollgate-token-file`.
    #[schema(pattern = "^tollgate-token-file$")]
    pub format: String,
    /// The file format's version, `1`.
    #[schema(minimum = 1, maximum = 1)]
    pub version: u32,
    /// When the file was made.
    #[schema(value_type = String, format = DateTime)]
    pub exported_at: Timestamp,
    /// The token's public fields.
    #[schema(value_type = TokenFileToken)]
    pub token: serde_json::Value,
    /// Whether `secret` holds the token.
    pub secret_included: bool,
    /// The secret token, or `null`.
    pub secret: Option<String>,
    /// What to do with the file, for people.
    pub note: String,
}

/// The token in a token file: its public fields, never its secret or hash.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // The schema of `TokenFileView::token`, which is kept as JSON.
pub(crate) struct TokenFileToken {
    /// 32 lower-case hexadecimal characters.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    id: String,
    /// The account or tenant the token belongs to.
    owner: String,
    /// The token's name.
    name: String,
    /// Empty when none was given.
    description: String,
    /// Sorted, without duplicates.
    scopes: Vec<String>,
    /// Whether the token may be used.
    enabled: bool,
    /// When it was issued.
    #[schema(value_type = String, format = DateTime)]
    created_at: String,
    /// When it last changed.
    #[schema(value_type = String, format = DateTime)]
    updated_at: String,
    /// When it stops working; `null` for never.
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<String>,
    /// When it last verified; `null` for never.
    #[schema(value_type = Option<String>, format = DateTime)]
    last_used_at: Option<String>,
    /// The token's last characters, to tell it apart from others; not secret.
    hint: String,
}

/// What apply and regenerate answer: the token with its secret, or with `download=true` the
/// token file holding it.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // A schema only: the handlers answer one or the other.
pub(crate) enum IssuedOrTokenFile {
    /// Without `download`, or with `download=false`.
    Issued(IssuedView),
    /// With `download=true`, as an attachment.
    File(TokenFileView),
}
