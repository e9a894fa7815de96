//! Credentials: argon2id password hashes, HS256 access tokens, opaque refresh tokens.

use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Algorithm as Argon2Algorithm, Argon2, Params, Version};
use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// argon2id at 12 MiB, 3 passes, 1 lane: OWASP's second recommended setting, the same
/// strength class as 19 MiB × 2 passes with a third less memory. Chosen for the store
/// box this runs on (2–4 cores, a few GB shared with the POS software): about 30 ms per
/// check on one core of the 2-core test machine, and with the password pool's one
/// worker per core (`service::passwords`, at most 4) sign-in never holds more than
/// 4 × 12 MiB at once. Stated in the README's security section too.
pub const PASSWORD_M_COST_KIB: u32 = 12 * 1024;
pub const PASSWORD_T_COST: u32 = 3;
pub const PASSWORD_P_COST: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(PASSWORD_M_COST_KIB, PASSWORD_T_COST, PASSWORD_P_COST, None)
        .unwrap_or_default();
    Argon2::new(Argon2Algorithm::Argon2id, Version::V0x13, params)
}

/// Argon2's working memory, allocated once per thread that hashes and never freed.
///
/// Why: argon2 allocates its 12 MiB afresh per check, and glibc raises its mmap threshold
/// to the size of the first large block freed, after which 12 MiB blocks (and every other
/// large allocation of the process) come from arenas that are never returned: a sign-in
/// flood measured 223–304 MB peak RSS that way, 64 MB with the threshold pinned. Reused
/// memory is never freed, so the threshold never moves.
pub type PasswordMemory = Vec<argon2::Block>;

pub fn password_memory() -> PasswordMemory {
    vec![argon2::Block::default(); PASSWORD_M_COST_KIB as usize]
}

/// The memory for hashes made outside the password pool (start-up, the CLI, tests).
fn shared_memory() -> &'static std::sync::Mutex<PasswordMemory> {
    static SHARED: std::sync::OnceLock<std::sync::Mutex<PasswordMemory>> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(|| std::sync::Mutex::new(password_memory()))
}

/// Hashes a new password. Blocking and memory-hungry: on a request path, run it on the
/// password pool.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut memory = shared_memory()
        .lock()
        .map_err(|_| anyhow::anyhow!("password memory lock"))?;
    hash_password_in(&mut memory, password)
}

/// Hashes a new password with today's parameters in `memory`.
pub fn hash_password_in(memory: &mut PasswordMemory, password: &str) -> anyhow::Result<String> {
    let fail = |e: &dyn std::fmt::Display| anyhow::anyhow!("password hashing failed: {e}");
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(|e| fail(&e))?;
    let argon = hasher();
    let need = argon.params().block_count();
    if memory.len() < need {
        memory.resize(need, argon2::Block::default());
    }
    let mut out = [0u8; 32];
    argon
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            &mut memory[..need],
        )
        .map_err(|e| fail(&e))?;
    let phc = PasswordHash {
        algorithm: Argon2Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(argon.params())
            .map_err(|e| fail(&e))?,
        salt: Some(salt.as_salt()),
        hash: Some(argon2::password_hash::Output::new(&out).map_err(|e| fail(&e))?),
    };
    Ok(phc.to_string())
}

/// Checks a password against a stored PHC string with the parameters stored in it.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match shared_memory().lock() {
        Ok(mut memory) => verify_password_in(&mut memory, password, phc),
        Err(_) => false,
    }
}

/// Checks a password against a stored PHC string, in `memory` (grown if the stored hash
/// needs more), comparing in constant time.
pub fn verify_password_in(memory: &mut PasswordMemory, password: &str, phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (h.salt, h.hash) else {
        return false;
    };
    let Ok(params) = Params::try_from(&h) else {
        return false;
    };
    let Ok(algorithm) = Argon2Algorithm::try_from(h.algorithm) else {
        return false;
    };
    let version = match h.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(v)) => v,
        Some(Err(_)) => return false,
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let need = params.block_count();
    if memory.len() < need {
        memory.resize(need, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    if Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut memory[..need])
        .is_err()
    {
        return false;
    }
    subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into()
}

/// Whether a stored hash was made with other parameters than today's (then it is
/// replaced after the next successful sign-in, which also keeps the cost of every check
/// the same as the dummy check for unknown usernames).
pub fn needs_rehash(phc: &str) -> bool {
    let Ok(h) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(params) = Params::try_from(&h) else {
        return true;
    };
    h.algorithm.as_str() != "argon2id"
        || params.m_cost() != PASSWORD_M_COST_KIB
        || params.t_cost() != PASSWORD_T_COST
        || params.p_cost() != PASSWORD_P_COST
}

/// A hash to verify against when the user does not exist, so that timing does not tell
/// which usernames exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not-a-real-password").unwrap_or_default())
}

/// Password policy for staff accounts.
pub fn check_password_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < 8 {
        return Err("Passwords need at least 8 characters.".into());
    }
    if password.chars().count() > 256 {
        return Err("Passwords may have at most 256 characters.".into());
    }
    // Sign-in refuses control characters (`validate::text`): a password holding one
    // could be set but never used.
    if password.chars().any(char::is_control) {
        return Err("Passwords may not contain control characters.".into());
    }
    Ok(())
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A readable random password (no look-alike characters).
pub fn random_password(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..len)
        .map(|_| ALPHABET[(rng.next_u32() as usize) % ALPHABET.len()] as char)
        .collect()
}

pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub username: String,
    pub role: String,
    pub permissions: Vec<String>,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Refresh-token family: revoking it (logout) ends this access token too.
    pub fam: String,
    /// The user's token epoch at issue; bumping it ends every session at once.
    pub epoch: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
}

pub struct JwtKeys {
    enc: EncodingKey,
    dec: DecodingKey,
    /// Derives a refresh token's successor (see `successor_refresh`); separate from the
    /// signing key so one use cannot stand in for the other.
    successor: [u8; 32],
}

pub enum TokenError {
    Expired,
    Invalid,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> JwtKeys {
        let mut successor = Sha256::new();
        successor.update(b"mps-edge refresh successor v1\0");
        successor.update(secret);
        JwtKeys {
            enc: EncodingKey::from_secret(secret),
            dec: DecodingKey::from_secret(secret),
            successor: successor.finalize().into(),
        }
    }

    /// The refresh token that replaces `token` when it is rotated: HMAC-SHA256 of it
    /// under a key only the server has. Deriving it (instead of drawing a random one and
    /// storing it for retries) lets a retry within the grace window get the very same
    /// token back while the database holds only hashes: whoever reads the database
    /// cannot compute a successor, and only the holder of `token` can ask for it.
    pub fn successor_refresh(&self, token: &str) -> String {
        use hmac::Mac;
        let mut mac = match hmac::Hmac::<Sha256>::new_from_slice(&self.successor) {
            Ok(mac) => mac,
            // HMAC takes a key of any length; this arm cannot run.
            Err(_) => return random_token(),
        };
        mac.update(token.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    pub fn sign(&self, claims: &Claims) -> anyhow::Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.enc)
            .map_err(|e| anyhow::anyhow!("signing a token failed: {e}"))
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let mut v = Validation::new(Algorithm::HS256);
        v.leeway = 5;
        v.set_required_spec_claims(&["exp", "sub"]);
        jsonwebtoken::decode::<Claims>(token, &self.dec, &v)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })
    }
}

/// Loads the JWT secret from the config, or (outside production) from
/// `<data_dir>/jwt.secret`, creating it with 0600 permissions on first start.
pub fn load_or_create_secret(cfg: &crate::config::Config) -> anyhow::Result<Vec<u8>> {
    if !cfg.auth.jwt_secret.is_empty() {
        return Ok(cfg.auth.jwt_secret.expose().as_bytes().to_vec());
    }
    if cfg.production {
        anyhow::bail!("production mode needs auth.jwt_secret");
    }
    let path = cfg.data_dir.join("jwt.secret");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let t = text.trim();
        if t.len() >= crate::config::MIN_JWT_SECRET_LEN {
            return Ok(t.as_bytes().to_vec());
        }
    }
    std::fs::create_dir_all(&cfg.data_dir)?;
    let mut bytes = [0u8; 48];
    rand::thread_rng().fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    crate::files::write_private(&path, &secret)?;
    Ok(secret.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn tokens_verify_and_expire() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let now = chrono::Utc::now().timestamp();
        let mut c = Claims {
            sub: "u".into(),
            username: "a".into(),
            role: "cashier".into(),
            permissions: vec![],
            iat: now,
            exp: now + 60,
            jti: "j".into(),
            fam: "f".into(),
            epoch: 0,
            dev: None,
        };
        let t = keys.sign(&c).unwrap();
        assert!(keys.verify(&t).is_ok());
        assert!(matches!(
            JwtKeys::new(b"another-secret-another-secret-xx").verify(&t),
            Err(TokenError::Invalid)
        ));
        c.exp = now - 100;
        let t = keys.sign(&c).unwrap();
        assert!(matches!(keys.verify(&t), Err(TokenError::Expired)));
        assert!(matches!(keys.verify("garbage"), Err(TokenError::Invalid)));
    }

    #[test]
    fn successors_are_stable_per_key_and_token() {
        let keys = JwtKeys::new(b"0123456789abcdef0123456789abcdef");
        let t = random_token();
        assert_eq!(keys.successor_refresh(&t), keys.successor_refresh(&t));
        assert_ne!(
            keys.successor_refresh(&t),
            keys.successor_refresh(&random_token())
        );
        let other = JwtKeys::new(b"another-secret-another-secret-xx");
        assert_ne!(keys.successor_refresh(&t), other.successor_refresh(&t));
        assert_eq!(keys.successor_refresh(&t).len(), 43);
    }

    #[test]
    fn policy_and_randoms() {
        assert!(check_password_policy("short").is_err());
        assert!(check_password_policy("long enough").is_ok());
        assert_eq!(random_password(16).len(), 16);
        assert_ne!(random_token(), random_token());
    }
}
