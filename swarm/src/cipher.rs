//! Transport ciphers of a [`crate::SecureStream`]: v8's XSalsa20 keystream for JS peers
//! (wire spec §4) and the authenticated records used between ims nodes, sealed with
//! AES-256-GCM or ChaCha20-Poly1305 (negotiated in the handshake, see [`crate::noise`]).

use blake2::Blake2bMac;
use blake2::digest::consts::U32;
use blake2::digest::{FixedOutput, KeyInit, Update};
use ring::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use salsa20::XSalsa20;
use salsa20::cipher::{KeyIvInit, StreamCipher};

use crate::error::RecordError;

/// Which transport a handshake negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// v8: one unauthenticated XSalsa20 keystream per direction (any JS peer).
    XSalsa20,
    /// ims-to-ims: length-prefixed authenticated records sealed with this suite.
    Aead(AeadSuite),
}

impl Transport {
    /// Whether every byte after the handshake is authenticated.
    pub fn is_authenticated(self) -> bool {
        matches!(self, Self::Aead(_))
    }
}

/// The AEAD that seals the records between two ims nodes. Both are 256-bit-key AEADs with a
/// 96-bit nonce and a 16-byte tag, so the record format is the same; only the cipher differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AeadSuite {
    /// ChaCha20-Poly1305 (RFC 8439): fast everywhere, constant time in software. Every ims
    /// node speaks it.
    ChaCha20Poly1305,
    /// AES-256-GCM: several times faster where the CPU has AES and carry-less multiply
    /// instructions; offered only there (see [`AeadSuite::aes_is_fast`]), and chosen when
    /// both sides offer it.
    Aes256Gcm,
}

impl AeadSuite {
    /// Whether this CPU runs AES-GCM in hardware (x86-64: AES-NI and PCLMULQDQ; aarch64: the
    /// AES and PMULL extensions). Without them AES-GCM is slower than ChaCha20-Poly1305, so
    /// we do not offer it.
    pub fn aes_is_fast() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            std::arch::is_x86_feature_detected!("aes") && std::arch::is_x86_feature_detected!("pclmulqdq")
        }
        #[cfg(target_arch = "aarch64")]
        {
            std::arch::is_aarch64_feature_detected!("aes") && std::arch::is_aarch64_feature_detected!("pmull")
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            false
        }
    }

    /// The domain string of this suite's record keys (never equal to the raw split keys, and
    /// different per suite so one split never keys two ciphers alike).
    fn key_domain(self) -> &'static [u8] {
        match self {
            Self::ChaCha20Poly1305 => b"ims transport chacha20-poly1305 v1",
            Self::Aes256Gcm => b"ims transport aes-256-gcm v1",
        }
    }
}

/// One direction of v8's transport: a continuous XSalsa20 keystream (libsodium
/// `crypto_stream_xsalsa20`), keyed with a split key and the sender's payload nonce. The
/// position advances across calls, so chunk boundaries do not matter (wire spec §4).
pub struct KeyStream(XSalsa20);

impl std::fmt::Debug for KeyStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyStream { .. }")
    }
}

impl KeyStream {
    /// The keystream for `key` (a split key) and `nonce` (the sender's NoisePayload nonce).
    pub fn new(key: &[u8; 32], nonce: &[u8; 24]) -> Self {
        Self(XSalsa20::new(key.into(), nonce.into()))
    }

    /// XORs the next `data.len()` keystream bytes into `data` (encrypts or decrypts).
    pub fn apply(&mut self, data: &mut [u8]) {
        self.0.apply_keystream(data);
    }
}

/// Derives a record key from one raw split key: `BLAKE2b-256(key = split_key, domain)`, the
/// domain naming the suite.
pub fn aead_key(suite: AeadSuite, split_key: &[u8; 32]) -> [u8; 32] {
    // A 32-byte key is always valid for BLAKE2b (max 64), so this cannot fail.
    let mut mac = <Blake2bMac<U32> as KeyInit>::new_from_slice(split_key).unwrap_or_else(|_| unreachable!());
    mac.update(suite.key_domain());
    mac.finalize_fixed().into()
}

/// Size of the authentication tag (both suites).
pub const TAG_LEN: usize = 16;
/// Size of a record's length header (big-endian u16 of the sealed length).
pub const HEADER_LEN: usize = 2;
/// The largest plaintext one record carries.
pub const MAX_RECORD_PLAINTEXT: usize = u16::MAX as usize - TAG_LEN;

/// One direction of the ims record transport.
///
/// Record = `u16be(len(sealed))` ‖ `sealed`, where `sealed` = AEAD(key, nonce = 4 zero bytes ‖
/// u64le(counter), ad = the 2-byte header, plaintext) ‖ tag. The counter starts at 0 and counts
/// the records of this direction, so a dropped, reordered, replayed or altered record fails
/// authentication. (A cut at a record boundary looks like EOF; the protocol above treats an
/// unexpected EOF as a dead peer.)
///
/// The AEADs are `ring`'s (BoringSSL's assembly): on x86-64 its ChaCha20-Poly1305 is about
/// twice and its AES-256-GCM five to nine times as fast as the portable RustCrypto crates, and
/// the cipher was half the CPU of a replication.
pub struct RecordCipher {
    key: LessSafeKey,
    suite: AeadSuite,
    counter: u64,
}

impl std::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCipher")
            .field("suite", &self.suite)
            .field("counter", &self.counter)
            .finish_non_exhaustive()
    }
}

impl RecordCipher {
    /// The cipher for one direction, from that direction's raw split key.
    pub fn new(suite: AeadSuite, split_key: &[u8; 32]) -> Self {
        let key = aead_key(suite, split_key);
        let algorithm = match suite {
            AeadSuite::ChaCha20Poly1305 => &CHACHA20_POLY1305,
            AeadSuite::Aes256Gcm => &AES_256_GCM,
        };
        // Both algorithms take exactly 32-byte keys, so this cannot fail.
        let unbound = UnboundKey::new(algorithm, &key).unwrap_or_else(|_| unreachable!());
        Self { key: LessSafeKey::new(unbound), suite, counter: 0 }
    }

    /// The suite this cipher seals with.
    pub fn suite(&self) -> AeadSuite {
        self.suite
    }

    fn next_nonce(&mut self) -> Result<(u64, Nonce), RecordError> {
        let counter = self.counter;
        self.counter = counter.checked_add(1).ok_or(RecordError::CounterExhausted)?;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter.to_le_bytes());
        // Unique: the counter never repeats for this key (it fails above instead of wrapping).
        Ok((counter, Nonce::assume_unique_for_key(nonce)))
    }

    /// Seals `plaintext` (at most [`MAX_RECORD_PLAINTEXT`] bytes; the caller chunks) and
    /// appends the record to `out`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        self.seal_parts(&[plaintext], out)
    }

    /// [`seal`](Self::seal) of the concatenation of `parts` (one record), gathered straight
    /// into `out`.
    pub fn seal_parts(&mut self, parts: &[&[u8]], out: &mut Vec<u8>) -> Result<(), RecordError> {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        if len > MAX_RECORD_PLAINTEXT {
            return Err(RecordError::TooLong(len));
        }
        let (_, nonce) = self.next_nonce()?;
        let header = ((len + TAG_LEN) as u16).to_be_bytes();
        let start = out.len();
        out.reserve(HEADER_LEN + len + TAG_LEN);
        out.extend_from_slice(&header);
        for part in parts {
            out.extend_from_slice(part);
        }
        let tag = self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(header), &mut out[start + HEADER_LEN..])
            .map_err(|_| RecordError::CounterExhausted)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// If `buf` starts with a whole record, returns its sealed length (header excluded).
    pub fn record_len(buf: &[u8]) -> Result<Option<usize>, RecordError> {
        let Some(header) = buf.get(..HEADER_LEN) else { return Ok(None) };
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        if len < TAG_LEN {
            return Err(RecordError::TooShort(len));
        }
        Ok((buf.len() >= HEADER_LEN + len).then_some(len))
    }

    /// The total size (header included) of the record `buf` starts with, once its header is
    /// complete.
    pub fn pending_len(buf: &[u8]) -> Option<usize> {
        let header = buf.get(..HEADER_LEN)?;
        Some(HEADER_LEN + usize::from(u16::from_be_bytes([header[0], header[1]])))
    }

    /// Opens one record, `header` being its 2 bytes and `sealed` the rest, in place; returns
    /// the plaintext length (a prefix of `sealed`).
    pub fn open(&mut self, header: [u8; HEADER_LEN], sealed: &mut [u8]) -> Result<usize, RecordError> {
        let (counter, nonce) = self.next_nonce()?;
        if sealed.len() < TAG_LEN {
            return Err(RecordError::TooShort(sealed.len()));
        }
        let text = self
            .key
            .open_in_place(nonce, Aad::from(header), sealed)
            .map_err(|_| RecordError::BadTag { counter })?;
        Ok(text.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keystream_is_continuous() {
        let mut whole = *b"hello keystream, across several writes";
        KeyStream::new(&[1; 32], &[2; 24]).apply(&mut whole);
        let mut parts = *b"hello keystream, across several writes";
        let mut ks = KeyStream::new(&[1; 32], &[2; 24]);
        let (a, b) = parts.split_at_mut(7);
        ks.apply(a);
        ks.apply(b);
        assert_eq!(whole, parts);
    }

    const SUITES: [AeadSuite; 2] = [AeadSuite::ChaCha20Poly1305, AeadSuite::Aes256Gcm];

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Known answers computed with an independent implementation (the RustCrypto
    /// `chacha20poly1305` and `aes-gcm` crates, and `blake2` for the key): the ChaCha20-Poly1305
    /// records are byte for byte those of ims nodes from before the AES suite existed.
    #[test]
    fn records_match_independent_implementations() {
        let expected = [
            (
                AeadSuite::ChaCha20Poly1305,
                [
                    "00155813ceff839383704b0c0e64ba235c5800a7670eb0",
                    "00163f88a863b157906d9dc453f998752af6afe8a5f59c91",
                ],
            ),
            (
                AeadSuite::Aes256Gcm,
                [
                    "00151caa94a477b510cadec939500bffcae5d3e5ffc5fc",
                    "0016e962e94a375bec80fcd28ed462d338959770a6b53689",
                ],
            ),
        ];
        for (suite, records) in expected {
            let mut tx = RecordCipher::new(suite, &[5; 32]);
            for (text, want) in [&b"first"[..], b"second"].into_iter().zip(records) {
                let mut out = Vec::new();
                tx.seal(text, &mut out).expect("seal");
                assert_eq!(hex(&out), want, "{suite:?}");
            }
        }
    }

    #[test]
    fn records_roundtrip_and_detect_tampering() {
        for suite in SUITES {
            let mut tx = RecordCipher::new(suite, &[5; 32]);
            let mut rx = RecordCipher::new(suite, &[5; 32]);
            let mut wire = Vec::new();
            tx.seal(b"first", &mut wire).expect("seal");
            tx.seal(b"second", &mut wire).expect("seal");
            let len = RecordCipher::record_len(&wire).expect("ok").expect("whole");
            let mut first = wire[2..2 + len].to_vec();
            let n = rx.open([wire[0], wire[1]], &mut first).expect("open");
            assert_eq!(&first[..n], b"first");
            // Flip one bit of the second record: authentication fails.
            let rest = &wire[2 + len..];
            let mut second = rest[2..].to_vec();
            second[0] ^= 1;
            assert_eq!(rx.open([rest[0], rest[1]], &mut second), Err(RecordError::BadTag { counter: 1 }));
        }
    }

    #[test]
    fn a_record_opens_only_under_its_own_suite_and_header() {
        let mut wire = Vec::new();
        RecordCipher::new(AeadSuite::Aes256Gcm, &[5; 32]).seal(b"hello", &mut wire).expect("seal");
        let mut sealed = wire[2..].to_vec();
        let mut chacha = RecordCipher::new(AeadSuite::ChaCha20Poly1305, &[5; 32]);
        assert_eq!(chacha.open([wire[0], wire[1]], &mut sealed), Err(RecordError::BadTag { counter: 0 }));
        // The header is associated data: a record presented with another length fails.
        let mut sealed = wire[2..].to_vec();
        let mut aes = RecordCipher::new(AeadSuite::Aes256Gcm, &[5; 32]);
        assert_eq!(aes.open([wire[0], wire[1] ^ 1], &mut sealed), Err(RecordError::BadTag { counter: 0 }));
        let mut short = [0u8; 5];
        assert_eq!(aes.open([0, 5], &mut short), Err(RecordError::TooShort(5)));
    }

    #[test]
    fn replayed_record_fails() {
        for suite in SUITES {
            let mut tx = RecordCipher::new(suite, &[5; 32]);
            let mut rx = RecordCipher::new(suite, &[5; 32]);
            let mut wire = Vec::new();
            tx.seal(b"once", &mut wire).expect("seal");
            let mut a = wire[2..].to_vec();
            rx.open([wire[0], wire[1]], &mut a).expect("first open");
            let mut b = wire[2..].to_vec();
            assert!(rx.open([wire[0], wire[1]], &mut b).is_err());
        }
    }

    #[test]
    fn a_record_gathered_from_parts_is_the_record_of_their_concatenation() {
        for suite in SUITES {
            let (mut whole, mut gathered) =
                (RecordCipher::new(suite, &[9; 32]), RecordCipher::new(suite, &[9; 32]));
            let data: Vec<u8> = (0..MAX_RECORD_PLAINTEXT).map(|i| (i * 31 % 256) as u8).collect();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for cuts in [&[][..], &[0, 0][..], &[1, 100, 65_000][..], &[MAX_RECORD_PLAINTEXT][..]] {
                let mut parts = Vec::new();
                let mut at = 0;
                for &c in cuts {
                    parts.push(&data[at..c]);
                    at = c;
                }
                parts.push(&data[at..]);
                whole.seal(&data, &mut a).expect("seal");
                gathered.seal_parts(&parts, &mut b).expect("seal parts");
                assert_eq!(a, b, "{suite:?} cut at {cuts:?}");
            }
            let too_long = [&data[..], &b"x"[..]];
            assert_eq!(
                gathered.seal_parts(&too_long, &mut b),
                Err(RecordError::TooLong(MAX_RECORD_PLAINTEXT + 1))
            );
        }
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let mut tx = RecordCipher::new(AeadSuite::ChaCha20Poly1305, &[5; 32]);
        let mut out = Vec::new();
        assert_eq!(
            tx.seal(&vec![0; MAX_RECORD_PLAINTEXT + 1], &mut out),
            Err(RecordError::TooLong(MAX_RECORD_PLAINTEXT + 1))
        );
        assert!(out.is_empty());
        tx.seal(&vec![0; MAX_RECORD_PLAINTEXT], &mut out).expect("the largest record");
        assert_eq!(out.len(), HEADER_LEN + usize::from(u16::MAX));
    }

    #[test]
    fn record_key_differs_from_split_key() {
        assert_ne!(aead_key(AeadSuite::ChaCha20Poly1305, &[5; 32]), [5; 32]);
        assert_ne!(aead_key(AeadSuite::ChaCha20Poly1305, &[5; 32]), aead_key(AeadSuite::Aes256Gcm, &[5; 32]));
        assert_eq!(RecordCipher::record_len(&[0, 3]), Err(RecordError::TooShort(3)));
    }
}
