//! Secrets: Argon2id password hashes, random session tokens and API keys, and
//! the SHA-256 under which tokens are stored. Shared by the server and
//! `gridmap-admin`.

use argon2::password_hash::rand_core::{OsRng, RngCore as _};
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::Argon2;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use std::sync::OnceLock;

/// Every session token starts with this, so a bearer token names its table.
pub const SESSION_PREFIX: &str = "gms_";
/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "gmk_";
/// Characters of a key shown in listings: the tag and 8 of the 43 random ones.
const DISPLAY_PREFIX_LEN: usize = API_KEY_PREFIX.len() + 8;
/// A token is its tag plus 32 random bytes in unpadded base64url (43 characters).
const TOKEN_LEN: usize = 4 + 43;

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("hashing a password: {0}")]
    Hash(argon2::password_hash::Error),
}

/// What kind of secret a bearer token is, judged by its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Session,
    ApiKey,
}

/// Hashes a password with Argon2id and the crate's default parameters
/// (19 MiB, 2 passes, 1 lane) and a random salt, as a PHC string.
///
/// # Errors
/// Only if the hasher rejects its input (a password over 4 GiB).
pub fn hash_password(password: &str) -> Result<String, CredentialError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(CredentialError::Hash)
}

/// Whether `password` matches the PHC string `phc`. The parameters come from
/// the string, so hashes made with older parameters still verify.
#[must_use]
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(err) => {
            tracing::error!(%err, "a stored password hash is not a PHC string");
            false
        }
    }
}

/// A hash of a password nobody knows, verified when a login names an unknown
/// user so that the answer takes as long as for a known one.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let password = random_token("");
        // Hashing cannot fail for a 43-character password; an empty string
        // would still never verify.
        hash_password(&password).unwrap_or_default()
    })
}

/// A new session token: `gms_` and 32 bytes from the OS RNG.
#[must_use]
pub fn new_session_token() -> String {
    random_token(SESSION_PREFIX)
}

/// A new API key: `gmk_` and 32 bytes from the OS RNG.
#[must_use]
pub fn new_api_key() -> String {
    random_token(API_KEY_PREFIX)
}

/// The start of a key that listings show in place of the secret.
#[must_use]
pub fn display_prefix(api_key: &str) -> &str {
    api_key.get(..DISPLAY_PREFIX_LEN).unwrap_or(api_key)
}

/// The kind of a well-formed token; `None` for anything else, which is then
/// refused without touching the database.
#[must_use]
pub fn token_kind(token: &str) -> Option<TokenKind> {
    let well_formed = token.len() == TOKEN_LEN
        && token[4..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return None;
    }
    if token.starts_with(SESSION_PREFIX) {
        Some(TokenKind::Session)
    } else if token.starts_with(API_KEY_PREFIX) {
        Some(TokenKind::ApiKey)
    } else {
        None
    }
}

/// The SHA-256 under which a token is stored. A plain hash suffices (no
/// salt, no stretching): tokens carry 256 random bits, nothing to guess.
#[must_use]
pub fn token_sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn random_token(prefix: &str) -> String {
    let mut bytes = [0_u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(prefix);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(bytes, &mut token);
    token
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_tagged_random_and_well_formed() {
        let session = new_session_token();
        let key = new_api_key();
        assert_eq!(session.len(), TOKEN_LEN);
        assert_eq!(token_kind(&session), Some(TokenKind::Session));
        assert_eq!(token_kind(&key), Some(TokenKind::ApiKey));
        assert_ne!(new_session_token(), session);
        assert_eq!(display_prefix(&key).len(), 12);
        assert!(key.starts_with(display_prefix(&key)));
        for bad in [
            "",
            "gms_",
            "Bearer x",
            &format!("gmx_{}", &key[4..]),
            &key[..40],
        ] {
            assert_eq!(token_kind(bad), None, "{bad:?}");
        }
        assert_eq!(token_kind(&format!("{}!", &key[..TOKEN_LEN - 1])), None);
    }

    #[test]
    fn passwords_verify_only_against_their_hash() {
        let phc = hash_password("correct horse").unwrap_or_default();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("correct horsE", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
        assert!(!verify_password("", dummy_password_hash()));
    }

    #[test]
    fn token_hash_is_sha256() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            token_sha256("abc")[..4],
            [0xba, 0x78, 0x16, 0xbf],
            "{:x?}",
            token_sha256("abc")
        );
    }
}
