//! Algorithms, signing keys, verifying keys, and development key generation.
//!
//! Every key is bound to exactly one [`Algorithm`] when it is loaded, from the key's own kind
//! (an RSA key is `RS256`, a P-256 key `ES256`, an Ed25519 key `EdDSA`, a secret `HS256`).
//! A token's `alg` only ever selects among keys bound to that algorithm, which is what
//! prevents algorithm-confusion attacks.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{DecodingKey, EncodingKey};
use p256::pkcs8::ObjectIdentifier;
use rand::RngCore as _;

use crate::Error;

/// The minimum length of an HS256 secret: RFC 7518 section 3.2 requires a key at least as
/// long as the hash output (256 bits).
pub const MIN_HS256_SECRET_LEN: usize = 32;

/// The signature algorithms herald supports. `none` is deliberately not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// Ed25519 signatures (RFC 8037).
    EdDSA,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// HMAC with SHA-256 and a shared secret.
    HS256,
}

impl Algorithm {
    /// Every supported algorithm.
    pub const ALL: [Algorithm; 4] = [
        Algorithm::EdDSA,
        Algorithm::ES256,
        Algorithm::RS256,
        Algorithm::HS256,
    ];

    /// The JOSE name of the algorithm (`alg`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
            Algorithm::HS256 => "HS256",
        }
    }

    /// The algorithm whose JOSE name is exactly `name`.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|alg| alg.as_str() == name)
    }

    pub(crate) fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = Error;

    /// Parses a JOSE algorithm name, case-insensitively (for command lines and config files).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Algorithm::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::Config(format!(
                    "unsupported algorithm {s:?} (supported: EdDSA, ES256, RS256, HS256)"
                ))
            })
    }
}

/// One PEM block of a key file: its label (`PUBLIC KEY`, ...) and its text, from its
/// `-----BEGIN` line to the end of its `-----END` line.
#[derive(Debug, Clone, Copy)]
struct PemBlock<'a> {
    label: &'a str,
    text: &'a str,
}

impl PemBlock<'_> {
    /// The DER the block encodes, when its body is base64 (`None` lets the key parsers,
    /// which read it again, say what is wrong).
    fn der(&self) -> Option<Vec<u8>> {
        use base64::engine::general_purpose::STANDARD;
        let body: String = self
            .text
            .lines()
            // RFC 1421 headers (`Proc-Type: ...`) precede the base64 of legacy encrypted keys.
            .filter(|line| !line.starts_with("-----") && !line.contains(':'))
            .flat_map(|line| line.chars().filter(|c| !c.is_ascii_whitespace()))
            .collect();
        STANDARD.decode(body).ok()
    }

    /// Refuses an encrypted private key, saying how to decrypt it: herald takes no
    /// passphrase, and the parsers would only call the block unsupported or malformed.
    fn check_not_encrypted(&self) -> Result<(), Error> {
        let (form, command) = if self.label == "ENCRYPTED PRIVATE KEY" {
            (
                "an encrypted PKCS#8 key",
                "openssl pkcs8 -in key.pem -out plain.pem",
            )
        } else if self.text.contains("Proc-Type: 4,ENCRYPTED") {
            (
                "an OpenSSL-encrypted key (Proc-Type: 4,ENCRYPTED)",
                "openssl pkey -in key.pem -out plain.pem",
            )
        } else {
            return Ok(());
        };
        Err(Error::InvalidKey(format!(
            "the {:?} block is {form}; encrypted keys are not supported: decrypt it with \
             `{command}` (it asks for the passphrase) and use plain.pem",
            self.label
        )))
    }
}

/// Every PEM block of `pem`, in order. Text between blocks is allowed, as openssl allows it
/// (it writes `Bag Attributes` lines there).
fn pem_blocks(pem: &[u8]) -> Result<Vec<PemBlock<'_>>, Error> {
    const BEGIN: &str = "-----BEGIN ";
    const DASHES: &str = "-----";
    let text = pem_text(pem)?;
    let mut blocks = Vec::new();
    let mut offset = 0;
    while let Some(found) = text[offset..].find(BEGIN) {
        let start = offset + found;
        let label_start = start + BEGIN.len();
        let label = text[label_start..]
            .find(DASHES)
            .map(|len| &text[label_start..label_start + len])
            .filter(|label| !label.contains(['\n', '\r']))
            .ok_or_else(|| Error::InvalidKey("unterminated PEM header line".into()))?;
        let body_start = label_start + label.len() + DASHES.len();
        let end_line = format!("-----END {label}-----");
        let end = text[body_start..]
            .find(&end_line)
            .map(|len| body_start + len)
            // Another block starting first means this one was cut short.
            .filter(|end| !text[body_start..*end].contains(BEGIN))
            .ok_or_else(|| {
                Error::InvalidKey(format!(
                    "the {label:?} block has no end line ({end_line:?}): is the file truncated?"
                ))
            })?;
        offset = end + end_line.len();
        blocks.push(PemBlock {
            label,
            text: &text[start..offset],
        });
    }
    if blocks.is_empty() {
        return Err(Error::InvalidKey(
            "no PEM block (\"-----BEGIN ...-----\") found".into(),
        ));
    }
    Ok(blocks)
}

/// The key blocks of a PEM file: every block but `EC PARAMETERS`, which
/// `openssl ecparam -genkey` writes before the key it generates. Those parameters are
/// checked all the same, since a key without its own could be read on the wrong curve.
fn key_blocks(pem: &[u8]) -> Result<Vec<PemBlock<'_>>, Error> {
    let mut keys = Vec::new();
    for block in pem_blocks(pem)? {
        if block.label == "EC PARAMETERS" {
            use sec1::der::Decode as _;
            let parameters = block
                .der()
                .and_then(|der| sec1::EcParameters::from_der(&der).ok())
                .ok_or_else(|| {
                    Error::InvalidKey(
                        "the \"EC PARAMETERS\" block does not name a curve; only the named \
                         curve P-256 is supported (ES256)"
                            .into(),
                    )
                })?;
            check_curve(parameters.named_curve())?;
        } else {
            keys.push(block);
        }
    }
    if keys.is_empty() {
        return Err(Error::InvalidKey(
            "the PEM holds EC PARAMETERS but no key".into(),
        ));
    }
    Ok(keys)
}

/// The one key block of a PEM file that must hold exactly one key.
fn single_key_block(pem: &[u8]) -> Result<PemBlock<'_>, Error> {
    let blocks = key_blocks(pem)?;
    match blocks.as_slice() {
        [block] => Ok(*block),
        _ => Err(Error::SeveralKeys {
            found: several(&blocks),
        }),
    }
}

/// "2 keys" when every block is a key, else the blocks' labels, which say more.
fn several(blocks: &[PemBlock<'_>]) -> String {
    if blocks.iter().all(|block| block.label.ends_with("KEY")) {
        format!("{} keys", blocks.len())
    } else {
        let labels: Vec<&str> = blocks.iter().map(|block| block.label).collect();
        format!("{} PEM blocks ({})", blocks.len(), labels.join(", "))
    }
}

/// id-ecPublicKey (RFC 5480): the algorithm of every elliptic-curve key, whatever its curve.
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1, alias P-256 or prime256v1: the one curve of ES256.
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");

/// The curve an elliptic-curve SPKI (`PUBLIC KEY`) or PKCS#8 (`PRIVATE KEY`) block is on:
/// `None` for other kinds of keys and for DER that does not parse, which the key parsers
/// report; `Some(None)` for an EC key that names no curve.
fn ec_curve(der: &[u8], private: bool) -> Option<Option<ObjectIdentifier>> {
    use p256::pkcs8::{PrivateKeyInfo, SubjectPublicKeyInfoRef};
    let algorithm = if private {
        PrivateKeyInfo::try_from(der).ok()?.algorithm
    } else {
        SubjectPublicKeyInfoRef::try_from(der).ok()?.algorithm
    };
    (algorithm.oid == EC_PUBLIC_KEY).then(|| algorithm.parameters_oid().ok())
}

/// Refuses a curve other than P-256, naming it. Checked before the signature library reads
/// the key: it takes any 256-bit curve's point (secp256k1's) for a P-256 one, which loads
/// and then fails every verification.
fn check_curve(curve: Option<ObjectIdentifier>) -> Result<(), Error> {
    match curve {
        Some(P256) => Ok(()),
        Some(other) => Err(Error::InvalidKey(format!(
            "the key is on the curve {}; only P-256 elliptic-curve keys are supported (ES256)",
            curve_name(other)
        ))),
        None => Err(Error::InvalidKey(
            "the elliptic-curve key does not name its curve; only P-256 elliptic-curve keys \
             are supported (ES256)"
                .into(),
        )),
    }
}

/// The usual name of a curve, or its OID when it is not one openssl commonly generates.
fn curve_name(oid: ObjectIdentifier) -> String {
    let name = match oid.to_string().as_str() {
        "1.3.132.0.10" => "secp256k1",
        "1.3.132.0.34" => "P-384 (secp384r1)",
        "1.3.132.0.35" => "P-521 (secp521r1)",
        "1.3.132.0.33" => "P-224 (secp224r1)",
        "1.2.840.10045.3.1.1" => "P-192 (prime192v1)",
        "1.3.36.3.3.2.8.1.1.7" => "brainpoolP256r1",
        "1.3.36.3.3.2.8.1.1.11" => "brainpoolP384r1",
        "1.3.36.3.3.2.8.1.1.13" => "brainpoolP512r1",
        "1.2.156.10197.1.301" => "SM2",
        other => return format!("with OID {other}"),
    };
    name.to_owned()
}

fn check_requested(found: Algorithm, requested: Option<Algorithm>) -> Result<Algorithm, Error> {
    match requested {
        Some(requested) if requested != found => Err(Error::InvalidKey(format!(
            "the key is a {found} key, it cannot be used with {requested}"
        ))),
        _ => Ok(found),
    }
}

fn check_secret(secret: &[u8]) -> Result<(), Error> {
    if secret.len() < MIN_HS256_SECRET_LEN {
        return Err(Error::InvalidKey(format!(
            "an HS256 secret must be at least {MIN_HS256_SECRET_LEN} bytes long, this one has {}",
            secret.len()
        )));
    }
    Ok(())
}

/// A private key (or HS256 secret) that signs tokens, bound to one algorithm.
#[derive(Clone)]
pub struct SigningKey {
    alg: Algorithm,
    key: EncodingKey,
    kid: Option<String>,
    /// The public half as a JWK (asymmetric keys), or the secret (HS256).
    public: PublicHalf,
}

#[derive(Clone)]
enum PublicHalf {
    Secret(Vec<u8>),
    Jwk(Box<Jwk>),
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl SigningKey {
    /// An HS256 key from a shared secret of at least [`MIN_HS256_SECRET_LEN`] bytes.
    pub fn hs256(secret: &[u8]) -> Result<SigningKey, Error> {
        check_secret(secret)?;
        Ok(SigningKey {
            alg: Algorithm::HS256,
            key: EncodingKey::from_secret(secret),
            kid: None,
            public: PublicHalf::Secret(secret.to_vec()),
        })
    }

    /// A private key from PEM: PKCS#8 (`PRIVATE KEY`) Ed25519, P-256 or RSA, PKCS#1
    /// (`RSA PRIVATE KEY`), or SEC1 (`EC PRIVATE KEY`, P-256).
    ///
    /// The algorithm is inferred from the key; when `alg` is given it must agree. The PEM
    /// must hold one key: with several, which one signs would be a guess
    /// ([`Error::SeveralKeys`]). Encrypted keys are refused, saying how to decrypt them.
    pub fn from_pem(pem: &[u8], alg: Option<Algorithm>) -> Result<SigningKey, Error> {
        let block = single_key_block(pem)?;
        block.check_not_encrypted()?;
        let pem = block.text.as_bytes();
        let (found, key) = match block.label {
            "PRIVATE KEY" => {
                if let Some(curve) = block.der().and_then(|der| ec_curve(&der, true)) {
                    check_curve(curve)?;
                }
                if let Ok(key) = EncodingKey::from_ed_pem(pem) {
                    (Algorithm::EdDSA, key)
                } else if let Ok(key) = EncodingKey::from_ec_pem(pem) {
                    use p256::pkcs8::DecodePrivateKey as _;
                    if p256::SecretKey::from_pkcs8_der(key.as_bytes()).is_err() {
                        return Err(Error::InvalidKey(
                            "only P-256 elliptic-curve keys are supported (ES256)".into(),
                        ));
                    }
                    (Algorithm::ES256, key)
                } else if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
                    use rsa::pkcs8::DecodePrivateKey as _;
                    check_rsa_size(rsa_size(rsa::RsaPrivateKey::from_pkcs8_pem(block.text)))?;
                    (Algorithm::RS256, key)
                } else {
                    return Err(Error::InvalidKey(
                        "the PKCS#8 private key is not an Ed25519, P-256 or RSA key".into(),
                    ));
                }
            }
            "RSA PRIVATE KEY" => {
                use rsa::pkcs1::DecodeRsaPrivateKey as _;
                let key = EncodingKey::from_rsa_pem(pem)
                    .map_err(|e| Error::InvalidKey(format!("bad PKCS#1 RSA private key: {e}")))?;
                check_rsa_size(rsa_size(rsa::RsaPrivateKey::from_pkcs1_pem(block.text)))?;
                (Algorithm::RS256, key)
            }
            "EC PRIVATE KEY" => {
                use p256::pkcs8::EncodePrivateKey as _;
                use sec1::der::Decode as _;
                // p256 reads a key's scalar without looking at the curve it names: a
                // secp256k1 key without its public point would load as some P-256 key.
                let der = block.der();
                if let Some(parameters) = der
                    .as_deref()
                    .and_then(|der| sec1::EcPrivateKey::from_der(der).ok())
                    .and_then(|key| key.parameters)
                {
                    check_curve(parameters.named_curve())?;
                }
                let secret = p256::SecretKey::from_sec1_pem(block.text).map_err(|_| {
                    Error::InvalidKey("bad SEC1 EC private key (only P-256 is supported)".into())
                })?;
                let der = secret
                    .to_pkcs8_der()
                    .map_err(|e| Error::InvalidKey(format!("cannot convert the EC key: {e}")))?;
                (Algorithm::ES256, EncodingKey::from_ec_der(der.as_bytes()))
            }
            other if other.contains("PUBLIC KEY") => {
                return Err(Error::InvalidKey(format!(
                    "a {other} cannot sign tokens: a private key is needed"
                )));
            }
            other => {
                return Err(Error::InvalidKey(format!(
                    "unsupported PEM block {other:?}"
                )));
            }
        };
        let alg = check_requested(found, alg)?;
        let jwk = Jwk::from_encoding_key(&key, alg.to_jwt())
            .map_err(|e| Error::InvalidKey(format!("cannot derive the public key: {e}")))?;
        Ok(SigningKey {
            alg,
            key,
            kid: None,
            public: PublicHalf::Jwk(Box::new(jwk)),
        })
    }

    /// Sets the `kid` written in the header of minted tokens.
    pub fn with_kid(mut self, kid: impl Into<String>) -> SigningKey {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm this key signs with.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id written in minted tokens' headers, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// The key that verifies this key's signatures (same algorithm and `kid`).
    pub fn verifying_key(&self) -> Result<VerifyingKey, Error> {
        let key = match &self.public {
            PublicHalf::Secret(secret) => VerifyingKey::hs256(secret)?,
            PublicHalf::Jwk(jwk) => VerifyingKey::from_jwk(jwk)?,
        };
        Ok(VerifyingKey {
            kid: self.kid.clone(),
            ..key
        })
    }

    /// The public key as a JWK (with `kid` and `alg`), for publishing in a JWK Set; `None`
    /// for an HS256 secret.
    pub fn public_jwk(&self) -> Option<Jwk> {
        match &self.public {
            PublicHalf::Secret(_) => None,
            PublicHalf::Jwk(jwk) => {
                let mut jwk = (**jwk).clone();
                jwk.common.key_id = self.kid.clone();
                Some(jwk)
            }
        }
    }

    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }
}

/// A trusted key that verifies signatures, bound to one algorithm and optionally a `kid`.
#[derive(Clone)]
pub struct VerifyingKey {
    pub(crate) alg: Algorithm,
    pub(crate) key: DecodingKey,
    pub(crate) kid: Option<String>,
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    /// An HS256 shared secret of at least [`MIN_HS256_SECRET_LEN`] bytes.
    pub fn hs256(secret: &[u8]) -> Result<VerifyingKey, Error> {
        check_secret(secret)?;
        Ok(VerifyingKey {
            alg: Algorithm::HS256,
            key: DecodingKey::from_secret(secret),
            kid: None,
        })
    }

    /// A public key from PEM: SPKI (`PUBLIC KEY`) Ed25519, P-256 or RSA, or PKCS#1
    /// (`RSA PUBLIC KEY`).
    ///
    /// The algorithm is inferred from the key; when `alg` is given it must agree. The PEM
    /// must hold one key ([`Error::SeveralKeys`]); [`VerifyingKey::all_from_pem`] reads
    /// every key of a file.
    pub fn from_pem(pem: &[u8], alg: Option<Algorithm>) -> Result<VerifyingKey, Error> {
        VerifyingKey::from_block(single_key_block(pem)?, alg)
    }

    /// Every public key of a PEM file, in order, as [`VerifyingKey::from_pem`] reads one: a
    /// file may hold an issuer's current and next keys during a rotation. A block that is
    /// not a usable public key fails the whole file, its error saying which block it is, so
    /// that no key is ever left out unnoticed.
    pub fn all_from_pem(pem: &[u8], alg: Option<Algorithm>) -> Result<Vec<VerifyingKey>, Error> {
        let blocks = key_blocks(pem)?;
        let count = blocks.len();
        blocks
            .into_iter()
            .enumerate()
            .map(|(index, block)| {
                VerifyingKey::from_block(block, alg).map_err(|e| match e {
                    Error::InvalidKey(reason) if count > 1 => Error::InvalidKey(format!(
                        "PEM block {} of {count} ({}): {reason}",
                        index + 1,
                        block.label
                    )),
                    e => e,
                })
            })
            .collect()
    }

    fn from_block(block: PemBlock<'_>, alg: Option<Algorithm>) -> Result<VerifyingKey, Error> {
        let pem = block.text.as_bytes();
        let (found, key) = match block.label {
            "PUBLIC KEY" => {
                if let Some(curve) = block.der().and_then(|der| ec_curve(&der, false)) {
                    check_curve(curve)?;
                }
                if let Ok(key) = DecodingKey::from_ed_pem(pem) {
                    (Algorithm::EdDSA, key)
                } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
                    // An uncompressed P-256 point is 65 bytes (P-384: 97).
                    if key.try_get_as_bytes().map(<[u8]>::len).ok() != Some(65) {
                        return Err(Error::InvalidKey(
                            "only P-256 elliptic-curve keys are supported (ES256)".into(),
                        ));
                    }
                    (Algorithm::ES256, key)
                } else if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
                    use rsa::pkcs8::DecodePublicKey as _;
                    check_rsa_size(rsa_size(rsa::RsaPublicKey::from_public_key_pem(block.text)))?;
                    (Algorithm::RS256, key)
                } else {
                    return Err(Error::InvalidKey(
                        "the public key is not an Ed25519, P-256 or RSA key".into(),
                    ));
                }
            }
            "RSA PUBLIC KEY" => {
                use rsa::pkcs1::DecodeRsaPublicKey as _;
                let key = DecodingKey::from_rsa_pem(pem)
                    .map_err(|e| Error::InvalidKey(format!("bad PKCS#1 RSA public key: {e}")))?;
                check_rsa_size(rsa_size(rsa::RsaPublicKey::from_pkcs1_pem(block.text)))?;
                (Algorithm::RS256, key)
            }
            other if other.contains("PRIVATE KEY") => {
                return Err(Error::InvalidKey(format!(
                    "a {other} was given where a public key is expected; configure the public half"
                )));
            }
            other => {
                return Err(Error::InvalidKey(format!(
                    "unsupported PEM block {other:?}"
                )));
            }
        };
        Ok(VerifyingKey {
            alg: check_requested(found, alg)?,
            key,
            kid: None,
        })
    }

    /// A public key from a JWK (RFC 7517): `RSA` (RS256), `EC` on P-256 (ES256), or `OKP`
    /// Ed25519 (EdDSA). The JWK's `kid` is kept; its `alg`, when present, must agree with the
    /// key type. Symmetric (`oct`) keys are refused: they do not belong in a published key set.
    pub fn from_jwk(jwk: &Jwk) -> Result<VerifyingKey, Error> {
        let found = match &jwk.algorithm {
            AlgorithmParameters::RSA(params) => {
                use base64::Engine as _;
                let modulus = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(params.n.trim_end_matches('='))
                    .map_err(|_| Error::InvalidKey("the RSA JWK's `n` is not base64url".into()))?;
                let significant = modulus.iter().skip_while(|b| **b == 0).count();
                check_rsa_size(Some(significant * 8))?;
                Algorithm::RS256
            }
            AlgorithmParameters::EllipticCurve(params) if params.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            AlgorithmParameters::EllipticCurve(_) | AlgorithmParameters::OctetKeyPair(_) => {
                return Err(Error::InvalidKey("unsupported curve in JWK".into()));
            }
            AlgorithmParameters::OctetKey(_) => {
                return Err(Error::InvalidKey(
                    "symmetric (oct) JWKs are not accepted".into(),
                ));
            }
            _ => return Err(Error::InvalidKey("unsupported JWK key type".into())),
        };
        if let Some(alg) = &jwk.common.key_algorithm {
            let name = alg.to_string();
            if name != found.as_str() {
                return Err(Error::InvalidKey(format!(
                    "the JWK says alg {name} but its key type is for {found}"
                )));
            }
        }
        let key =
            DecodingKey::from_jwk(jwk).map_err(|e| Error::InvalidKey(format!("bad JWK: {e}")))?;
        Ok(VerifyingKey {
            alg: found,
            key,
            kid: jwk.common.key_id.clone(),
        })
    }

    /// Sets the key id a token's `kid` is compared with.
    pub fn with_kid(mut self, kid: impl Into<String>) -> VerifyingKey {
        self.kid = Some(kid.into());
        self
    }

    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> Algorithm {
        self.alg
    }

    /// The key id, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }
}

/// A freshly generated development key pair, PEM-encoded.
#[derive(Debug, Clone)]
pub struct DevKeyPair {
    /// The private key, PKCS#8 PEM (`PRIVATE KEY`).
    pub private_pem: String,
    /// The public key, SPKI PEM (`PUBLIC KEY`).
    pub public_pem: String,
}

/// Generates a random HS256 secret for development: 32 random bytes, base64url-encoded
/// (the 43 characters of the string are the secret), never starting with `-`: the
/// secret is printed to be passed back as `--dev-secret <secret>`, where a leading
/// `-` reads as a flag (one secret in 64 did).
pub fn generate_hs256_secret() -> String {
    let mut bytes = [0u8; 32];
    loop {
        rand::rng().fill_bytes(&mut bytes);
        let secret = URL_SAFE_NO_PAD.encode(bytes);
        if !secret.starts_with('-') {
            return secret;
        }
    }
}

/// Generates an Ed25519 key pair for development.
pub fn generate_ed25519() -> Result<DevKeyPair, Error> {
    use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
    use ed25519_dalek::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _};

    let mut seed = [0u8; 32];
    rand::rng().fill_bytes(&mut seed);
    let key = ed25519_dalek::SigningKey::from_bytes(&seed);
    // PKCS#8 v1 (no embedded public key): the form openssl writes and jsonwebtoken reads.
    let keypair = ed25519_dalek::pkcs8::KeypairBytes {
        secret_key: seed,
        public_key: None,
    };
    let private_pem = keypair
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| Error::InvalidKey(format!("cannot encode the Ed25519 key: {e}")))?;
    let public_pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::InvalidKey(format!("cannot encode the Ed25519 public key: {e}")))?;
    Ok(DevKeyPair {
        private_pem: private_pem.to_string(),
        public_pem,
    })
}

/// The smallest RSA modulus accepted, in bits (RFC 7518, section 3.3).
const MIN_RSA_BITS: usize = 2048;

/// The modulus size of a parsed RSA key, in bits, if it parsed.
fn rsa_size<K: rsa::traits::PublicKeyParts, E>(key: Result<K, E>) -> Option<usize> {
    key.ok().map(|key| key.size() * 8)
}

/// Refuses an RSA key shorter than [`MIN_RSA_BITS`]; a size that could not
/// be read is left to the signature library, which read the key already.
fn check_rsa_size(bits: Option<usize>) -> Result<(), Error> {
    match bits {
        Some(bits) if bits < MIN_RSA_BITS => Err(Error::InvalidKey(format!(
            "the RSA key has {bits} bits; RS256 needs at least {MIN_RSA_BITS} \
             (RFC 7518, section 3.3)"
        ))),
        _ => Ok(()),
    }
}

/// The PEM text of a key, for the parsers that take text.
fn pem_text(pem: &[u8]) -> Result<&str, Error> {
    std::str::from_utf8(pem).map_err(|_| Error::InvalidKey("the PEM file is not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PRIVATE: &str = include_str!("../tests/keys/rsa-private.pem");
    const RSA_PUBLIC: &str = include_str!("../tests/keys/rsa-public.pem");
    const EC_PRIVATE: &str = include_str!("../tests/keys/ec-private.pem");
    const EC_SEC1: &str = include_str!("../tests/keys/ec-sec1-private.pem");
    const EC_PUBLIC: &str = include_str!("../tests/keys/ec-public.pem");
    const EC384_PRIVATE: &str = include_str!("../tests/keys/ec384-private.pem");
    const EC384_PUBLIC: &str = include_str!("../tests/keys/ec384-public.pem");
    const ED_PRIVATE: &str = include_str!("../tests/keys/ed-private.pem");
    const ED_PUBLIC: &str = include_str!("../tests/keys/ed-public.pem");
    const K1_PRIVATE: &str = include_str!("../tests/keys/k1-private.pem");
    const K1_PUBLIC: &str = include_str!("../tests/keys/k1-public.pem");
    const K1_SEC1_NO_PUBLIC: &str = include_str!("../tests/keys/k1-sec1-nopub-private.pem");

    fn invalid(result: Result<impl fmt::Debug, Error>) -> String {
        result.unwrap_err().to_string()
    }

    #[test]
    fn every_public_key_of_a_file_loads() {
        let both = format!("{ED_PUBLIC}{EC_PUBLIC}");
        let keys = VerifyingKey::all_from_pem(both.as_bytes(), None).unwrap();
        let algorithms: Vec<_> = keys.iter().map(VerifyingKey::algorithm).collect();
        assert_eq!(algorithms, [Algorithm::EdDSA, Algorithm::ES256]);
        // Text between blocks, as openssl writes it, is no block.
        let annotated = format!("Bag Attributes\n{RSA_PUBLIC}\n# next\n{EC_PUBLIC}");
        assert_eq!(
            VerifyingKey::all_from_pem(annotated.as_bytes(), None)
                .unwrap()
                .len(),
            2
        );
        // Where one key is expected, two refuse the file rather than its first key being taken.
        assert_eq!(
            invalid(VerifyingKey::from_pem(both.as_bytes(), None)),
            "invalid key: the PEM holds 2 keys where one key is expected; put one key per file"
        );
    }

    #[test]
    fn one_unusable_block_fails_the_whole_key_file_naming_it() {
        let mixed = format!("{EC_PUBLIC}{ED_PRIVATE}");
        let err = invalid(VerifyingKey::all_from_pem(mixed.as_bytes(), None));
        assert!(
            err.starts_with("invalid key: PEM block 2 of 2 (PRIVATE KEY): a PRIVATE KEY was given"),
            "{err}"
        );
        let with_k1 = format!("{EC_PUBLIC}{K1_PUBLIC}");
        let err = invalid(VerifyingKey::all_from_pem(with_k1.as_bytes(), None));
        assert!(err.contains("PEM block 2 of 2 (PUBLIC KEY)"), "{err}");
        assert!(err.contains("secp256k1"), "{err}");
    }

    #[test]
    fn a_signing_key_file_must_hold_one_key() {
        let both = format!("{ED_PRIVATE}{EC_PRIVATE}");
        let err = SigningKey::from_pem(both.as_bytes(), None).unwrap_err();
        assert!(
            matches!(&err, Error::SeveralKeys { found } if found == "2 keys"),
            "{err}"
        );
        let with_cert =
            format!("{EC_PRIVATE}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        assert!(
            invalid(SigningKey::from_pem(with_cert.as_bytes(), None))
                .contains("holds 2 PEM blocks (PRIVATE KEY, CERTIFICATE)")
        );
    }

    #[test]
    fn secp256k1_keys_are_refused_naming_the_curve() {
        let expected = "invalid key: the key is on the curve secp256k1; only P-256 \
                        elliptic-curve keys are supported (ES256)";
        assert_eq!(
            invalid(VerifyingKey::from_pem(K1_PUBLIC.as_bytes(), None)),
            expected
        );
        assert_eq!(
            invalid(SigningKey::from_pem(K1_PRIVATE.as_bytes(), None)),
            expected
        );
        // Without its public point, nothing but the curve it names tells this scalar
        // from a P-256 key's.
        assert_eq!(
            invalid(SigningKey::from_pem(K1_SEC1_NO_PUBLIC.as_bytes(), None)),
            expected
        );
        assert!(invalid(VerifyingKey::from_pem(EC384_PUBLIC.as_bytes(), None)).contains("P-384"));
    }

    #[test]
    fn ec_parameters_before_a_key_are_checked_not_counted() {
        let generated = include_str!("../tests/keys/ec-params-private.pem");
        let key = SigningKey::from_pem(generated.as_bytes(), None).unwrap();
        assert_eq!(key.algorithm(), Algorithm::ES256);
        let k1_parameters = format!(
            "-----BEGIN EC PARAMETERS-----\nBgUrgQQACg==\n-----END EC PARAMETERS-----\n{EC_SEC1}"
        );
        assert!(
            invalid(SigningKey::from_pem(k1_parameters.as_bytes(), None)).contains("secp256k1")
        );
    }

    #[test]
    fn encrypted_keys_are_refused_saying_how_to_decrypt_them() {
        let err = invalid(SigningKey::from_pem(
            include_bytes!("../tests/keys/ec-encrypted-private.pem"),
            None,
        ));
        assert!(err.contains("encrypted keys are not supported"), "{err}");
        assert!(
            err.contains("`openssl pkcs8 -in key.pem -out plain.pem` (it asks for the passphrase)"),
            "{err}"
        );
        let err = invalid(SigningKey::from_pem(
            include_bytes!("../tests/keys/ec-sec1-encrypted-private.pem"),
            None,
        ));
        assert!(err.contains("Proc-Type: 4,ENCRYPTED"), "{err}");
        assert!(
            err.contains("`openssl pkey -in key.pem -out plain.pem`"),
            "{err}"
        );
    }

    #[test]
    fn a_truncated_key_is_refused_as_truncated() {
        let cut = &EC_PUBLIC[..EC_PUBLIC.len() - 10];
        assert_eq!(
            invalid(VerifyingKey::from_pem(cut.as_bytes(), None)),
            "invalid key: the \"PUBLIC KEY\" block has no end line \
             (\"-----END PUBLIC KEY-----\"): is the file truncated?"
        );
        // Cut short before the next block begins.
        let cut_first = format!("{}{ED_PUBLIC}", &EC_PUBLIC[..EC_PUBLIC.len() - 26]);
        assert!(
            invalid(VerifyingKey::all_from_pem(cut_first.as_bytes(), None))
                .contains("is the file truncated?")
        );
    }

    #[test]
    fn rsa_keys_shorter_than_2048_bits_are_refused() {
        let short = "the RSA key has 1024 bits; RS256 needs at least 2048 (RFC 7518, section 3.3)";
        for pem in [
            include_str!("../tests/keys/rsa-1024-private.pem"),
            include_str!("../tests/keys/rsa-1024-pkcs1-private.pem"),
        ] {
            let err = SigningKey::from_pem(pem.as_bytes(), None).unwrap_err();
            assert_eq!(err.to_string(), format!("invalid key: {short}"));
        }
        let public = include_str!("../tests/keys/rsa-1024-public.pem");
        let err = VerifyingKey::from_pem(public.as_bytes(), None).unwrap_err();
        assert_eq!(err.to_string(), format!("invalid key: {short}"));
        // 128 bytes of modulus in a JWK: 1024 bits.
        use base64::Engine as _;
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xc5u8; 128]);
        let jwk: Jwk =
            serde_json::from_value(serde_json::json!({"kty": "RSA", "n": n, "e": "AQAB"})).unwrap();
        let err = VerifyingKey::from_jwk(&jwk).unwrap_err();
        assert_eq!(err.to_string(), format!("invalid key: {short}"));
        // The 2048-bit test keys are taken.
        assert!(SigningKey::from_pem(RSA_PRIVATE.as_bytes(), None).is_ok());
        assert!(VerifyingKey::from_pem(RSA_PUBLIC.as_bytes(), None).is_ok());
    }

    #[test]
    fn algorithms_are_inferred_from_private_keys() {
        let alg = |pem: &str| {
            SigningKey::from_pem(pem.as_bytes(), None)
                .unwrap()
                .algorithm()
        };
        assert_eq!(alg(RSA_PRIVATE), Algorithm::RS256);
        assert_eq!(alg(EC_PRIVATE), Algorithm::ES256);
        assert_eq!(alg(EC_SEC1), Algorithm::ES256);
        assert_eq!(alg(ED_PRIVATE), Algorithm::EdDSA);
    }

    #[test]
    fn algorithms_are_inferred_from_public_keys() {
        let alg = |pem: &str| {
            VerifyingKey::from_pem(pem.as_bytes(), None)
                .unwrap()
                .algorithm()
        };
        assert_eq!(alg(RSA_PUBLIC), Algorithm::RS256);
        assert_eq!(alg(EC_PUBLIC), Algorithm::ES256);
        assert_eq!(alg(ED_PUBLIC), Algorithm::EdDSA);
    }

    #[test]
    fn a_requested_algorithm_must_agree_with_the_key() {
        let err = SigningKey::from_pem(RSA_PRIVATE.as_bytes(), Some(Algorithm::ES256)).unwrap_err();
        assert!(
            err.to_string()
                .contains("RS256 key, it cannot be used with ES256"),
            "{err}"
        );
        let err = VerifyingKey::from_pem(ED_PUBLIC.as_bytes(), Some(Algorithm::RS256)).unwrap_err();
        assert!(matches!(err, Error::InvalidKey(_)));
        assert!(SigningKey::from_pem(EC_PRIVATE.as_bytes(), Some(Algorithm::ES256)).is_ok());
    }

    #[test]
    fn p384_keys_are_refused() {
        assert!(
            SigningKey::from_pem(EC384_PRIVATE.as_bytes(), None)
                .unwrap_err()
                .to_string()
                .contains("P-256")
        );
        assert!(
            VerifyingKey::from_pem(EC384_PUBLIC.as_bytes(), None)
                .unwrap_err()
                .to_string()
                .contains("P-256")
        );
    }

    #[test]
    fn public_and_private_halves_are_not_interchangeable() {
        let err = SigningKey::from_pem(RSA_PUBLIC.as_bytes(), None).unwrap_err();
        assert!(err.to_string().contains("private key is needed"), "{err}");
        let err = VerifyingKey::from_pem(ED_PRIVATE.as_bytes(), None).unwrap_err();
        assert!(err.to_string().contains("public key is expected"), "{err}");
    }

    #[test]
    fn garbage_is_refused_with_a_message() {
        assert!(
            SigningKey::from_pem(b"hello", None)
                .unwrap_err()
                .to_string()
                .contains("no PEM block")
        );
        let bad = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
        assert!(matches!(
            SigningKey::from_pem(bad.as_bytes(), None),
            Err(Error::InvalidKey(_))
        ));
        let cert = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert!(
            SigningKey::from_pem(cert.as_bytes(), None)
                .unwrap_err()
                .to_string()
                .contains("unsupported PEM block")
        );
    }

    #[test]
    fn short_hs256_secrets_are_refused() {
        assert!(SigningKey::hs256(&[7; 31]).is_err());
        assert!(VerifyingKey::hs256(b"").is_err());
        assert!(SigningKey::hs256(&[7; 32]).is_ok());
    }

    #[test]
    fn generated_secrets_never_start_with_a_dash() {
        // Without the guard one secret in 64 starts with `-`: 2,000 draws
        // would all miss it with a probability of about 2e-14.
        for _ in 0..2_000 {
            let secret = generate_hs256_secret();
            assert!(!secret.starts_with('-'), "{secret}");
            assert_eq!(secret.len(), 43);
        }
    }

    #[test]
    fn generated_keys_load() {
        let secret = generate_hs256_secret();
        assert_eq!(secret.len(), 43);
        assert_ne!(secret, generate_hs256_secret());
        SigningKey::hs256(secret.as_bytes()).unwrap();
        let pair = generate_ed25519().unwrap();
        assert_eq!(
            SigningKey::from_pem(pair.private_pem.as_bytes(), None)
                .unwrap()
                .algorithm(),
            Algorithm::EdDSA
        );
        assert_eq!(
            VerifyingKey::from_pem(pair.public_pem.as_bytes(), None)
                .unwrap()
                .algorithm(),
            Algorithm::EdDSA
        );
    }

    #[test]
    fn algorithm_names() {
        assert_eq!("eddsa".parse::<Algorithm>().unwrap(), Algorithm::EdDSA);
        assert_eq!(Algorithm::from_name("ES256"), Some(Algorithm::ES256));
        assert_eq!(Algorithm::from_name("es256"), None);
        assert_eq!(Algorithm::from_name("none"), None);
        assert!("none".parse::<Algorithm>().is_err());
        assert!("PS256".parse::<Algorithm>().is_err());
    }
}
