//! The handshake payload: v8's `NoisePayload { required bytes nonce = 1 }` (wire spec §3.2),
//! plus one field of ours that advertises ims transport features.
//!
//! Hand-written (two fields) instead of pulling a protobuf crate into `swarm`.
//!
//! Field 2 (`uint64 ims_features`, a bit set) is only ever written by ims. JS's generated
//! decoder (`simple-hypercore-protocol/messages.js`, `NoisePayload.decode`) skips unknown
//! field numbers with `skip(prefix & 7, …)`, so a JS peer reads the nonce and ignores it.

use crate::varint::{self, Varint};

/// Length of the XSalsa20 nonce carried in the payload.
pub const NONCE_LEN: usize = 24;

/// Feature bit: this node can speak the authenticated record transport
/// ([`crate::cipher::RecordCipher`]).
pub const FEATURE_AEAD: u64 = 1;

/// Feature bit: this node offers to seal those records with AES-256-GCM (set only where the
/// CPU has AES instructions, [`crate::cipher::AeadSuite::aes_is_fast`]). Chosen over
/// ChaCha20-Poly1305 when both sides set it.
pub const FEATURE_AES_GCM: u64 = 2;

/// A decoded handshake payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoisePayload {
    /// The XSalsa20 nonce of the sender's direction.
    pub nonce: [u8; NONCE_LEN],
    /// ims feature bits (field 2); 0 from JS peers. Below 2^56, as every v8 varint.
    pub ims_features: u64,
}

impl NoisePayload {
    /// Encodes as JS does (`0a 18 <nonce>`), then field 2 if any ims feature is set.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 + NONCE_LEN + 11);
        out.extend_from_slice(&[0x0a, NONCE_LEN as u8]);
        out.extend_from_slice(&self.nonce);
        if self.ims_features != 0 {
            out.push(0x10); // field 2, wire type 0
            varint::encode(self.ims_features, &mut out);
        }
        out
    }

    /// Decodes a payload; unknown fields are skipped as in JS, the nonce is required and must
    /// be 24 bytes (JS's XSalsa20 would throw on any other length).
    pub fn decode(mut buf: &[u8]) -> Result<Self, &'static str> {
        let mut nonce = None;
        let mut ims_features = 0;
        while !buf.is_empty() {
            let Varint::Value(key, n) = varint::decode(buf) else { return Err("bad field key") };
            buf = &buf[n..];
            let value_len = match key & 7 {
                0 => match varint::decode(buf) {
                    Varint::Value(v, n) => {
                        if key >> 3 == 2 {
                            ims_features = v;
                        }
                        n
                    }
                    _ => return Err("bad varint field"),
                },
                2 => {
                    let Varint::Value(len, n) = varint::decode(buf) else { return Err("bad length") };
                    let len = usize::try_from(len).map_err(|_| "field too long")?;
                    let end =
                        n.checked_add(len).filter(|&e| e <= buf.len()).ok_or("field overruns payload")?;
                    if key >> 3 == 1 {
                        nonce = Some(
                            <[u8; NONCE_LEN]>::try_from(&buf[n..end]).map_err(|_| "nonce is not 24 bytes")?,
                        );
                    }
                    end
                }
                1 => 8,
                5 => 4,
                _ => return Err("unsupported wire type"),
            };
            buf = buf.get(value_len..).ok_or("field overruns payload")?;
        }
        Ok(Self { nonce: nonce.ok_or("missing nonce")?, ims_features })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn js_form_is_26_bytes_and_roundtrips() {
        let p = NoisePayload { nonce: [9; 24], ims_features: 0 };
        let bytes = p.encode();
        assert_eq!(bytes.len(), 26);
        assert_eq!(&bytes[..2], &[0x0a, 0x18]);
        assert_eq!(NoisePayload::decode(&bytes), Ok(p));
        let q = NoisePayload { nonce: [1; 24], ims_features: FEATURE_AEAD };
        assert_eq!(NoisePayload::decode(&q.encode()), Ok(q));
    }

    #[test]
    fn rejects_bad_payloads() {
        assert!(NoisePayload::decode(&[]).is_err());
        assert!(NoisePayload::decode(&[0x0a, 0x17]).is_err());
        assert!(NoisePayload::decode(&[0x0a, 0x01, 0x00]).is_err());
        assert!(NoisePayload::decode(&[0x0f]).is_err());
    }

    #[test]
    fn skips_unknown_fields() {
        let mut bytes = vec![0x18, 0x05, 0x22, 0x01, 0xff];
        bytes.extend(NoisePayload { nonce: [3; 24], ims_features: 0 }.encode());
        assert_eq!(NoisePayload::decode(&bytes).map(|p| p.nonce), Ok([3; 24]));
    }
}
