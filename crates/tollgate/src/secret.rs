//! The token string format, secret hashing and the opt-in sealing of secrets.
//!
//! # Token format, version 1
//!
//! ```text
//! tg_2Xk9...(43 random base62 characters)...Qe1a7Zc(6 base62 checksum characters)
//! └┬┘ └───────────────── random ─────────────────┘└ checksum ┘
//! prefix
//! ```
//!
//! - The **prefix** (default `tg`) names the issuer, so secret scanners and people can tell a
//!   Tollgate token at a glance. It is 1–16 lower-case ASCII letters or digits, starting with a
//!   letter.
//! - The **random** part is 43 characters drawn uniformly from the 62 base62 characters with
//!   the operating system's CSPRNG: 43 × log2(62) ≈ 256.03 bits.
//! - The **checksum** is the CRC32 of everything before it (prefix, `_`, random), written as 6
//!   base62 digits, most significant first — the scheme GitHub uses for its tokens. A mistyped
//!   or truncated token is rejected without touching storage.
//!
//! The part after `_` is exactly 49 characters long in version 1. Later versions will use a
//! different length, so a parser can tell versions apart and keep accepting tokens already
//! issued.
//!
//! Only a hash of the whole string is stored: SHA-256, or HMAC-SHA-256 keyed with an
//! application-held pepper (see [`TokenHasher`]).

use std::fmt;

use chacha20poly1305::aead::Aead;
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::TryRng;
use rand::rngs::SysRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::record::TokenId;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// Random characters in a version 1 token.
const RANDOM_LEN: usize = 43;
/// Checksum characters in a version 1 token.
const CHECKSUM_LEN: usize = 6;
/// Characters after the `_` in a version 1 token.
const BODY_LEN_V1: usize = RANDOM_LEN + CHECKSUM_LEN;
const MAX_PREFIX_LEN: usize = 16;

/// How many trailing characters of a token its [hint](PlaintextToken::hint) shows.
pub const HINT_CHARS: usize = 4;

/// The format version of tokens this crate issues.
pub const TOKEN_FORMAT_VERSION: u32 = 1;

/// The shape of issued tokens: their prefix. Parses and checks presented tokens.
///
/// ```
/// use tollgate::TokenFormat;
///
/// let format = TokenFormat::new("acme").unwrap();
/// let token = format.generate().unwrap();
/// assert!(token.expose_secret().starts_with("acme_"));
/// assert!(format.check(token.expose_secret()).is_ok());
/// assert!(TokenFormat::new("Bad Prefix").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenFormat {
    /// `<prefix>_`
    head: String,
}

impl Default for TokenFormat {
    fn default() -> Self {
        Self {
            head: "tg_".to_owned(),
        }
    }
}

/// Why a presented string is not a well-formed token. Reported by [`TokenFormat::check`]; never
/// includes the presented string.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformed {
    /// The length does not match any known format version.
    #[error("the token has the wrong length")]
    Length,
    /// The token does not start with this application's prefix and `_`.
    #[error("the token does not start with the expected prefix")]
    Prefix,
    /// A character outside base62 after the prefix.
    #[error("the token contains a character that cannot appear in a token")]
    Character,
    /// The checksum does not match: the token was mistyped or truncated.
    #[error("the token's checksum does not match; it was probably mistyped or cut short")]
    Checksum,
}

impl TokenFormat {
    /// A format with the given prefix: 1–16 lower-case ASCII letters or digits, starting with a
    /// letter.
    pub fn new(prefix: &str) -> Result<Self, Error> {
        let invalid = |reason| Error::InvalidPrefix {
            prefix: prefix.to_owned(),
            reason,
        };
        if prefix.is_empty() || prefix.len() > MAX_PREFIX_LEN {
            return Err(invalid("it must be 1 to 16 characters long"));
        }
        if !prefix.as_bytes()[0].is_ascii_lowercase() {
            return Err(invalid("it must start with a lower-case ASCII letter"));
        }
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        {
            return Err(invalid(
                "only lower-case ASCII letters and digits are allowed",
            ));
        }
        Ok(Self {
            head: format!("{prefix}_"),
        })
    }

    /// The prefix, without the `_`.
    pub fn prefix(&self) -> &str {
        &self.head[..self.head.len() - 1]
    }

    /// Generates a new token from the operating system's CSPRNG.
    pub fn generate(&self) -> Result<PlaintextToken, Error> {
        let mut token = Zeroizing::new(String::with_capacity(self.head.len() + BODY_LEN_V1));
        token.push_str(&self.head);
        let mut pool = Zeroizing::new([0u8; 64]);
        let mut produced = 0;
        while produced < RANDOM_LEN {
            SysRng
                .try_fill_bytes(pool.as_mut_slice())
                .map_err(|e| Error::Random(Box::new(e)))?;
            // 248 = 4 × 62: rejecting bytes ≥ 248 makes `byte % 62` uniform.
            for &byte in pool.iter().filter(|&&b| b < 248) {
                if produced == RANDOM_LEN {
                    break;
                }
                token.push(BASE62[usize::from(byte % 62)] as char);
                produced += 1;
            }
        }
        let checksum = encode_checksum(crc32fast::hash(token.as_bytes()));
        token.push_str(std::str::from_utf8(&checksum).expect("base62 is ASCII"));
        Ok(PlaintextToken(token))
    }

    /// Checks a presented string's shape and checksum; touches no storage.
    pub fn check(&self, token: &str) -> Result<(), Malformed> {
        let bytes = token.as_bytes();
        if bytes.len() != self.head.len() + BODY_LEN_V1 {
            return Err(Malformed::Length);
        }
        let (head, body) = bytes.split_at(self.head.len());
        if head != self.head.as_bytes() {
            return Err(Malformed::Prefix);
        }
        if !all_alphanumeric(body) {
            return Err(Malformed::Character);
        }
        let (payload, checksum) = bytes.split_at(bytes.len() - CHECKSUM_LEN);
        let expected = encode_checksum(crc32fast::hash(payload));
        // The checksum is not secret (it is derived from the presented string), so a plain
        // comparison leaks nothing.
        if checksum != expected {
            return Err(Malformed::Checksum);
        }
        Ok(())
    }
}

/// Whether every byte is an ASCII letter or digit. Without an early exit and over an array
/// of the body's fixed length, so that it compiles to a few vector instructions (over a
/// slice of unknown length it did not vectorize: 200 instructions a token, by callgrind).
fn all_alphanumeric(bytes: &[u8]) -> bool {
    let ok = |acc: bool, &b: &u8| {
        let letter = (b | 0x20).wrapping_sub(b'a') < 26;
        let digit = b.wrapping_sub(b'0') < 10;
        acc & (letter | digit)
    };
    match <&[u8; BODY_LEN_V1]>::try_from(bytes) {
        Ok(body) => body.iter().fold(true, ok),
        Err(_) => bytes.iter().fold(true, ok),
    }
}

fn encode_checksum(mut crc: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(crc % 62) as usize];
        crc /= 62;
    }
    out
}

/// A token's plaintext, as returned once by apply and regenerate.
///
/// It redacts itself in `Debug` and `Display` and is wiped from memory when dropped. Call
/// [`expose_secret`](Self::expose_secret) to hand it to the caller who applied for it.
///
/// ```
/// let token = tollgate::TokenFormat::default().generate().unwrap();
/// assert_eq!(format!("{token}"), "[REDACTED]");
/// assert_eq!(format!("{token:?}"), "PlaintextToken([REDACTED])");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PlaintextToken(Zeroizing<String>);

impl PlaintextToken {
    /// The secret token string. Show it to its owner once; never log it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The last [`HINT_CHARS`] characters: enough to tell tokens apart at a glance, as the
    /// token list shows them, and not secret (in Tollgate's format they are part of the
    /// checksum, which anyone can compute from the token but which reveals nothing of the
    /// random part).
    pub fn hint(&self) -> String {
        let start = self
            .0
            .char_indices()
            .rev()
            .nth(HINT_CHARS - 1)
            .map_or(0, |(at, _)| at);
        self.0[start..].to_owned()
    }

    pub(crate) fn from_unchecked(token: String) -> Self {
        Self(Zeroizing::new(token))
    }
}

impl fmt::Debug for PlaintextToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PlaintextToken([REDACTED])")
    }
}

impl fmt::Display for PlaintextToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// The SHA-256 (or peppered HMAC-SHA-256) of a token string: what stores keep and index.
///
/// Equality is constant-time.
#[derive(Clone, Copy, Eq)]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// Wraps stored bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw bytes, for storing and indexing.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl PartialEq for SecretHash {
    /// Constant-time: the differences of all four 64-bit words are folded together before
    /// the one branch, which `black_box` keeps the compiler from moving into the loop.
    /// (`subtle`'s byte-wise `ct_eq` puts a `black_box` on each of the 32 bytes: 350
    /// instructions a comparison, measured with callgrind, against about 20 here.)
    fn eq(&self, other: &Self) -> bool {
        let word = |bytes: &[u8; 32], i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&bytes[i * 8..i * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        let diff = (0..4).fold(0u64, |acc, i| acc | (word(&self.0, i) ^ word(&other.0, i)));
        std::hint::black_box(diff) == 0
    }
}

impl fmt::Debug for SecretHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretHash(..)")
    }
}

/// Hashes token strings: SHA-256, or HMAC-SHA-256 with a pepper.
///
/// A pepper is a secret the application holds outside the store (an environment variable, a
/// secrets manager). With one, a stolen copy of the store cannot even be used to test guesses.
/// Changing or losing the pepper invalidates every issued token.
#[derive(Clone, Default)]
pub struct TokenHasher {
    pepper: Option<Hmac<Sha256>>,
}

impl fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenHasher")
            .field("peppered", &self.pepper.is_some())
            .finish()
    }
}

impl TokenHasher {
    /// A hasher keyed with `pepper`, which must be at least 16 bytes.
    pub fn with_pepper(pepper: &[u8]) -> Result<Self, Error> {
        if pepper.len() < 16 {
            return Err(Error::InvalidKey("a pepper must be at least 16 bytes"));
        }
        let mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(pepper)
            .map_err(|_| Error::InvalidKey("the pepper was rejected by HMAC"))?;
        Ok(Self { pepper: Some(mac) })
    }

    /// Hashes a token string.
    pub fn hash(&self, token: &str) -> SecretHash {
        match &self.pepper {
            None => SecretHash(Sha256::digest(token.as_bytes()).into()),
            Some(mac) => {
                let mut mac = mac.clone();
                mac.update(token.as_bytes());
                SecretHash(mac.finalize().into_bytes().into())
            }
        }
    }
}

/// A 256-bit key that keeps secrets recoverable: with one configured, each secret is also
/// stored encrypted (XChaCha20-Poly1305, the token id as associated data) so that
/// [`TokenManager::download`](crate::TokenManager::download) can include it later.
///
/// Anyone holding both the key and the store can read every token. Keep the key out of the
/// store, and leave recoverable mode off unless you need it.
#[derive(Clone)]
pub struct EncryptionKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for EncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionKey([REDACTED])")
    }
}

impl EncryptionKey {
    /// A key from 32 bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// A key from 64 hexadecimal characters.
    pub fn from_hex(hex: &str) -> Result<Self, Error> {
        let hex = hex.trim().as_bytes();
        if hex.len() != 64 {
            return Err(Error::InvalidKey(
                "an encryption key must be 64 hexadecimal characters (32 bytes)",
            ));
        }
        let mut bytes = Zeroizing::new([0u8; 32]);
        for (out, pair) in bytes.iter_mut().zip(hex.chunks_exact(2)) {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => *out = (hi * 16 + lo) as u8,
                _ => {
                    return Err(Error::InvalidKey(
                        "an encryption key must be 64 hexadecimal characters (32 bytes)",
                    ));
                }
            }
        }
        Ok(Self(bytes))
    }

    /// A fresh random key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, Error> {
        let mut bytes = Zeroizing::new([0u8; 32]);
        SysRng
            .try_fill_bytes(bytes.as_mut_slice())
            .map_err(|e| Error::Random(Box::new(e)))?;
        Ok(Self(bytes))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new_from_slice(self.0.as_slice()).expect("32-byte key")
    }

    /// Encrypts a secret for token `id`: 24-byte nonce followed by the ciphertext.
    pub(crate) fn seal(&self, id: &TokenId, secret: &PlaintextToken) -> Result<Vec<u8>, Error> {
        let mut nonce = [0u8; 24];
        SysRng
            .try_fill_bytes(&mut nonce)
            .map_err(|e| Error::Random(Box::new(e)))?;
        let payload = chacha20poly1305::aead::Payload {
            msg: secret.expose_secret().as_bytes(),
            aad: id.as_bytes(),
        };
        let ciphertext = self
            .cipher()
            .encrypt(&XNonce::from(nonce), payload)
            .map_err(|_| Error::SealedSecret(*id))?;
        let mut out = Vec::with_capacity(24 + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        Ok(out)
    }

    /// Decrypts what [`seal`](Self::seal) produced for the same `id`.
    pub(crate) fn open(&self, id: &TokenId, sealed: &[u8]) -> Result<PlaintextToken, Error> {
        if sealed.len() < 24 {
            return Err(Error::SealedSecret(*id));
        }
        let (nonce, ciphertext) = sealed.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().expect("split at 24");
        let payload = chacha20poly1305::aead::Payload {
            msg: ciphertext,
            aad: id.as_bytes(),
        };
        let mut plain = self
            .cipher()
            .decrypt(&XNonce::from(nonce), payload)
            .map_err(|_| Error::SealedSecret(*id))?;
        let token = String::from_utf8(std::mem::take(&mut plain));
        plain.zeroize();
        match token {
            Ok(token) => Ok(PlaintextToken::from_unchecked(token)),
            Err(err) => {
                err.into_bytes().zeroize();
                Err(Error::SealedSecret(*id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_documented_shape() {
        let format = TokenFormat::default();
        let token = format.generate().unwrap();
        let s = token.expose_secret();
        assert_eq!(s.len(), 3 + 49);
        assert!(s.starts_with("tg_"));
        assert!(s[3..].bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_eq!(format.check(s), Ok(()));
        assert_ne!(format.generate().unwrap(), token);
    }

    #[test]
    fn every_single_character_typo_is_caught() {
        let format = TokenFormat::default();
        let token = format.generate().unwrap();
        let s = token.expose_secret();
        for i in 3..s.len() {
            let mut bytes = s.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'a' { b'b' } else { b'a' };
            let typo = String::from_utf8(bytes).unwrap();
            assert_eq!(
                format.check(&typo),
                Err(Malformed::Checksum),
                "position {i}"
            );
        }
    }

    #[test]
    fn malformed_reasons() {
        let format = TokenFormat::default();
        let token = format.generate().unwrap();
        let s = token.expose_secret();
        assert_eq!(format.check(""), Err(Malformed::Length));
        assert_eq!(format.check(&s[..s.len() - 1]), Err(Malformed::Length));
        assert_eq!(
            format.check(&format!("xy{}", &s[2..])),
            Err(Malformed::Prefix)
        );
        assert_eq!(
            format.check(&format!("{}-", &s[..s.len() - 1])),
            Err(Malformed::Character)
        );
        let other = TokenFormat::new("acme").unwrap();
        assert_eq!(other.check(s), Err(Malformed::Length));
    }

    #[test]
    fn random_part_uses_the_whole_alphabet() {
        let format = TokenFormat::default();
        let mut seen = [false; 128];
        for _ in 0..200 {
            for b in format.generate().unwrap().expose_secret()[3..46].bytes() {
                seen[usize::from(b)] = true;
            }
        }
        assert_eq!(BASE62.iter().filter(|&&b| seen[usize::from(b)]).count(), 62);
    }

    #[test]
    fn prefix_rules() {
        assert!(TokenFormat::new("").is_err());
        assert!(TokenFormat::new("1abc").is_err());
        assert!(TokenFormat::new("a_b").is_err());
        assert!(TokenFormat::new("ABC").is_err());
        assert!(TokenFormat::new(&"a".repeat(17)).is_err());
        assert_eq!(TokenFormat::new("acme2").unwrap().prefix(), "acme2");
    }

    #[test]
    fn hashes_differ_with_pepper_and_compare_equal() {
        let plain = TokenHasher::default();
        let peppered = TokenHasher::with_pepper(b"0123456789abcdef").unwrap();
        assert_eq!(plain.hash("tg_x"), plain.hash("tg_x"));
        assert_ne!(plain.hash("tg_x"), peppered.hash("tg_x"));
        assert_ne!(plain.hash("tg_x"), plain.hash("tg_y"));
        assert!(TokenHasher::with_pepper(b"short").is_err());
        // Known SHA-256 vector: the stored hash is plain SHA-256 of the string.
        assert_eq!(plain.hash("abc").as_bytes()[..4], [0xba, 0x78, 0x16, 0xbf]);
    }

    #[test]
    fn secrets_never_print() {
        let token = TokenFormat::default().generate().unwrap();
        let secret = token.expose_secret().to_owned();
        assert!(!format!("{token:?} {token}").contains(&secret));
        let key = EncryptionKey::from_bytes([7; 32]);
        assert_eq!(format!("{key:?}"), "EncryptionKey([REDACTED])");
        let hash = TokenHasher::default().hash(&secret);
        assert_eq!(format!("{hash:?}"), "SecretHash(..)");
    }

    #[test]
    fn sealing_round_trips_and_binds_the_id() {
        let key = EncryptionKey::generate().unwrap();
        let id = TokenId::from_bytes([1; 16]);
        let other = TokenId::from_bytes([2; 16]);
        let token = TokenFormat::default().generate().unwrap();
        let sealed = key.seal(&id, &token).unwrap();
        assert_eq!(key.open(&id, &sealed).unwrap(), token);
        assert!(matches!(
            key.open(&other, &sealed),
            Err(Error::SealedSecret(_))
        ));
        let wrong = EncryptionKey::from_bytes([9; 32]);
        assert!(matches!(
            wrong.open(&id, &sealed),
            Err(Error::SealedSecret(_))
        ));
    }

    #[test]
    fn encryption_key_from_hex() {
        let hex = "00".repeat(31) + "ff";
        assert!(EncryptionKey::from_hex(&hex).is_ok());
        assert!(EncryptionKey::from_hex("abc").is_err());
        assert!(EncryptionKey::from_hex(&"zz".repeat(32)).is_err());
    }
}
