//! The stored form of a record.

use serde::{Deserialize, Serialize};
use tollgate::jiff::Timestamp;
use tollgate::{PreviousSecret, SealedSecret, SecretHash, TokenId, TokenRecord};

use crate::error::RedbStoreError;

/// A record as postcard encodes it (schema version 2). Times are Unix microseconds, the
/// precision the manager keeps. Field order is part of the schema: change it only with a
/// schema version bump.
///
/// Postcard writes a nested struct's fields inline, so a version 2 row is a version 1 row
/// ([`Fields`]) followed by the hint: version 1 rows decode as `Fields`.
#[derive(Serialize, Deserialize)]
struct Row {
    fields: Fields,
    hint: String,
}

/// The fields of schema version 1.
#[derive(Serialize, Deserialize)]
struct Fields {
    owner: String,
    name: String,
    description: String,
    scopes: Vec<String>,
    enabled: bool,
    created_at: i64,
    updated_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    secret_hash: [u8; 32],
    previous_secret: Option<([u8; 32], i64)>,
    sealed_secret: Option<Vec<u8>>,
    version: u64,
}

pub(crate) fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

fn timestamp(micros: i64) -> Result<Timestamp, RedbStoreError> {
    Timestamp::from_microsecond(micros)
        .map_err(|_| RedbStoreError::Corrupt(postcard::Error::DeserializeBadEncoding))
}

pub(crate) fn encode(record: &TokenRecord) -> Vec<u8> {
    let fields = Fields {
        owner: record.owner.clone(),
        name: record.name.clone(),
        description: record.description.clone(),
        scopes: record.scopes.clone(),
        enabled: record.enabled,
        created_at: micros(record.created_at),
        updated_at: micros(record.updated_at),
        expires_at: record.expires_at.map(micros),
        last_used_at: record.last_used_at.map(micros),
        secret_hash: *record.secret_hash.as_bytes(),
        previous_secret: record
            .previous_secret
            .as_ref()
            .map(|p| (*p.hash.as_bytes(), micros(p.valid_until))),
        sealed_secret: record.sealed_secret.as_ref().map(|s| s.0.clone()),
        version: record.version,
    };
    let row = Row {
        fields,
        hint: record.hint.clone(),
    };
    postcard::to_stdvec(&row).expect("records always encode")
}

pub(crate) fn decode(id: [u8; 16], bytes: &[u8]) -> Result<TokenRecord, RedbStoreError> {
    let Row { fields, hint } = postcard::from_bytes(bytes).map_err(RedbStoreError::Corrupt)?;
    record(id, fields, hint)
}

/// Encodes a record as schema version 1 did, for the upgrade test.
#[cfg(test)]
pub(crate) fn encode_v1(record: &TokenRecord) -> Vec<u8> {
    let bytes = encode(record);
    let Row { fields, .. } = postcard::from_bytes(&bytes).expect("just encoded");
    postcard::to_stdvec(&fields).expect("records always encode")
}

/// Decodes a row written by schema version 1, which kept no hint.
pub(crate) fn decode_v1(id: [u8; 16], bytes: &[u8]) -> Result<TokenRecord, RedbStoreError> {
    let fields = postcard::from_bytes(bytes).map_err(RedbStoreError::Corrupt)?;
    record(id, fields, String::new())
}

fn record(id: [u8; 16], row: Fields, hint: String) -> Result<TokenRecord, RedbStoreError> {
    Ok(TokenRecord {
        id: TokenId::from_bytes(id),
        owner: row.owner,
        name: row.name,
        description: row.description,
        scopes: row.scopes,
        enabled: row.enabled,
        created_at: timestamp(row.created_at)?,
        updated_at: timestamp(row.updated_at)?,
        expires_at: row.expires_at.map(timestamp).transpose()?,
        last_used_at: row.last_used_at.map(timestamp).transpose()?,
        secret_hash: SecretHash::from_bytes(row.secret_hash),
        previous_secret: row
            .previous_secret
            .map(|(hash, until)| {
                Ok::<_, RedbStoreError>(PreviousSecret {
                    hash: SecretHash::from_bytes(hash),
                    valid_until: timestamp(until)?,
                })
            })
            .transpose()?,
        sealed_secret: row.sealed_secret.map(SealedSecret),
        version: row.version,
        hint,
    })
}
