//! Transport ciphers of a [`crate::SecureStream`]: v8's XSalsa20 keystream for JS peers
//! (wire spec §4) and the authenticated ChaCha20-Poly1305 records used between ims nodes
//! (negotiated in the handshake, see [`crate::noise`]).

use blake2::Blake2bMac;
use blake2::digest::consts::U32;
use blake2::digest::{FixedOutput, KeyInit, Update};
use chacha20poly1305::ChaCha20Poly1305;
use chacha20poly1305::aead::AeadInPlace;
use salsa20::XSalsa20;
use salsa20::cipher::{KeyIvInit, StreamCipher};

use crate::error::RecordError;

/// Which transport a handshake negotiated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// v8: one unauthenticated XSalsa20 keystream per direction (any JS peer).
    XSalsa20,
    /// ims-to-ims: length-prefixed ChaCha20-Poly1305 records.
    Aead,
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

/// Domain string for the record keys (never equal to the raw split keys).
const AEAD_KEY_DOMAIN: &[u8] = b"ims transport chacha20-poly1305 v1";

/// Derives a record key from one raw split key: `BLAKE2b-256(key = split_key, AEAD_KEY_DOMAIN)`.
pub fn aead_key(split_key: &[u8; 32]) -> [u8; 32] {
    // A 32-byte key is always valid for BLAKE2b (max 64), so this cannot fail.
    let mut mac = <Blake2bMac<U32> as KeyInit>::new_from_slice(split_key).unwrap_or_else(|_| unreachable!());
    mac.update(AEAD_KEY_DOMAIN);
    mac.finalize_fixed().into()
}

/// Size of the Poly1305 tag.
pub const TAG_LEN: usize = 16;
/// Size of a record's length header (big-endian u16 of the sealed length).
pub const HEADER_LEN: usize = 2;
/// The largest plaintext one record carries.
pub const MAX_RECORD_PLAINTEXT: usize = u16::MAX as usize - TAG_LEN;

/// One direction of the ims record transport.
///
/// Record = `u16be(len(sealed))` ‖ `sealed`, where `sealed` = ChaCha20-Poly1305(key, nonce =
/// 4 zero bytes ‖ u64le(counter), ad = the 2-byte header, plaintext) ‖ tag. The counter starts at
/// 0 and counts the records of this direction, so a dropped, reordered, replayed or altered
/// record fails authentication. (A cut at a record boundary looks like EOF; the protocol above
/// treats an unexpected EOF as a dead peer.)
pub struct RecordCipher {
    aead: ChaCha20Poly1305,
    counter: u64,
}

impl std::fmt::Debug for RecordCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCipher").field("counter", &self.counter).finish_non_exhaustive()
    }
}

impl RecordCipher {
    /// The cipher for one direction, from that direction's raw split key.
    pub fn new(split_key: &[u8; 32]) -> Self {
        let key = aead_key(split_key);
        Self { aead: ChaCha20Poly1305::new((&key).into()), counter: 0 }
    }

    fn next_nonce(&mut self) -> Result<(u64, [u8; 12]), RecordError> {
        let counter = self.counter;
        self.counter = counter.checked_add(1).ok_or(RecordError::CounterExhausted)?;
        let mut nonce = [0u8; 12];
        nonce[4..].copy_from_slice(&counter.to_le_bytes());
        Ok((counter, nonce))
    }

    /// Seals `plaintext` (at most [`MAX_RECORD_PLAINTEXT`] bytes; the caller chunks) and
    /// appends the record to `out`.
    pub fn seal(&mut self, plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), RecordError> {
        if plaintext.len() > MAX_RECORD_PLAINTEXT {
            return Err(RecordError::TooLong(plaintext.len()));
        }
        let (_, nonce) = self.next_nonce()?;
        let header = ((plaintext.len() + TAG_LEN) as u16).to_be_bytes();
        let start = out.len();
        out.extend_from_slice(&header);
        out.extend_from_slice(plaintext);
        let tag = self
            .aead
            .encrypt_in_place_detached((&nonce).into(), &header, &mut out[start + HEADER_LEN..])
            .map_err(|_| RecordError::CounterExhausted)?;
        out.extend_from_slice(&tag);
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
        let text_len = sealed.len().checked_sub(TAG_LEN).ok_or(RecordError::TooShort(sealed.len()))?;
        let (text, tag) = sealed.split_at_mut(text_len);
        self.aead
            .decrypt_in_place_detached((&nonce).into(), &header, text, (&*tag).into())
            .map_err(|_| RecordError::BadTag { counter })?;
        Ok(text_len)
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

    #[test]
    fn records_roundtrip_and_detect_tampering() {
        let mut tx = RecordCipher::new(&[5; 32]);
        let mut rx = RecordCipher::new(&[5; 32]);
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

    #[test]
    fn replayed_record_fails() {
        let mut tx = RecordCipher::new(&[5; 32]);
        let mut rx = RecordCipher::new(&[5; 32]);
        let mut wire = Vec::new();
        tx.seal(b"once", &mut wire).expect("seal");
        let mut a = wire[2..].to_vec();
        rx.open([wire[0], wire[1]], &mut a).expect("first open");
        let mut b = wire[2..].to_vec();
        assert!(rx.open([wire[0], wire[1]], &mut b).is_err());
    }

    #[test]
    fn oversized_plaintext_is_refused() {
        let mut tx = RecordCipher::new(&[5; 32]);
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
        assert_ne!(aead_key(&[5; 32]), [5; 32]);
        assert_eq!(RecordCipher::record_len(&[0, 3]), Err(RecordError::TooShort(3)));
    }
}
