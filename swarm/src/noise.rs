//! The v8 Noise XX handshake as a pure state machine (wire spec §3), and the ims transport
//! negotiation that rides inside it.
//!
//! # The v8 handshake
//! `Noise_XX_25519_ChaChaPoly_BLAKE2b`, empty prologue, through `snow`. Every message we write
//! carries the same [`payload::NoisePayload`] (our 24-byte XSalsa20 nonce); from the peer we
//! keep the last payload received (msg2 for the initiator, msg3 for the responder). Messages
//! travel with a varint length prefix, at most 65535 bytes. When the handshake is done we take
//! snow's *raw split* (`c1`, `c2`: initiator tx = c1, rx = c2; responder swapped): v8 never uses
//! Noise transport messages, it keys XSalsa20 and the hypercore capability with these.
//!
//! # ims-to-ims authenticated transport (the negotiation)
//! v8's XSalsa20 has no MAC. Between two ims nodes we want every frame authenticated, without
//! breaking JS peers and without letting a man in the middle downgrade us. Design:
//!
//! * Each ims side sets bit [`payload::FEATURE_AEAD`] in field 2 of its NoisePayload. JS's
//!   decoder skips unknown fields, so a JS peer sees an ordinary payload; JS never sets it, so
//!   with JS both sides fall back to XSalsa20 exactly as v8 does.
//! * The transport is [`Transport::Aead`] iff *both* payloads carry the bit. Its records are
//!   sealed with AES-256-GCM iff both payloads also carry [`payload::FEATURE_AES_GCM`] (a
//!   node sets it only where AES runs in hardware), else with ChaCha20-Poly1305.
//! * Why a MITM cannot strip either bit: payloads are part of the Noise transcript. msg1's payload is
//!   sent in clear but is mixed into the handshake hash `h`, which is the associated data of
//!   every later AEAD operation; msg2 and msg3 payloads are encrypted and authenticated.
//!   Removing the bit from msg1 makes the responder's `h` differ from the initiator's, so the
//!   initiator fails to decrypt msg2 (the `s` and payload tags); altering msg2/msg3 breaks
//!   their tags. Either way the handshake fails, nothing is silently downgraded.
//! * The record keys are derived from the split with domain separation
//!   ([`crate::cipher::aead_key`]), so they never equal the raw split keys that hypercore
//!   uses for capabilities.

pub mod payload;

use snow::{Builder, HandshakeState};

use crate::cipher::{AeadSuite, Transport};
use crate::error::HandshakeError;
use crate::identity::{Identity, NodeId};
use crate::varint::{self, Varint};
use payload::{FEATURE_AEAD, FEATURE_AES_GCM, NONCE_LEN, NoisePayload};

/// The Noise protocol name v8 uses (wire spec §3.1).
pub const PROTOCOL_NAME: &str = "Noise_XX_25519_ChaChaPoly_BLAKE2b";

/// The largest Noise message (wire spec §3.4).
pub const MAX_MESSAGE_LEN: usize = 65535;

/// Which side of the handshake we are (by convention, the dialling side initiates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends msg1 and msg3.
    Initiator,
    /// Sends msg2.
    Responder,
}

/// The raw split keys of a finished handshake, from our point of view (wire spec §3.3).
#[derive(Clone, PartialEq, Eq)]
pub struct Split {
    /// Our sending key (initiator: c1; responder: c2).
    pub tx: [u8; 32],
    /// Our receiving key (initiator: c2; responder: c1).
    pub rx: [u8; 32],
}

impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Split { .. }")
    }
}

/// Options of one handshake.
#[derive(Clone, Debug)]
pub struct HandshakeConfig {
    offer_aead: bool,
    offer_aes_gcm: bool,
    allow_xsalsa20: bool,
    expected_remote: Option<NodeId>,
    timeout: Option<std::time::Duration>,
    #[cfg(feature = "test-utils")]
    fixed_ephemeral: Option<[u8; 32]>,
    #[cfg(feature = "test-utils")]
    fixed_nonce: Option<[u8; NONCE_LEN]>,
}

impl Default for HandshakeConfig {
    fn default() -> Self {
        Self {
            offer_aead: true,
            offer_aes_gcm: AeadSuite::aes_is_fast(),
            allow_xsalsa20: false,
            expected_remote: None,
            timeout: Some(std::time::Duration::from_secs(20)),
            #[cfg(feature = "test-utils")]
            fixed_ephemeral: None,
            #[cfg(feature = "test-utils")]
            fixed_nonce: None,
        }
    }
}

impl HandshakeConfig {
    /// A configuration that behaves like a JS v8 peer (no ims feature bits, XSalsa20).
    pub fn v8_compatible() -> Self {
        Self::default().offer_aead(false).allow_xsalsa20(true)
    }

    /// Whether a peer that does not offer the authenticated transport (a JS v8 peer) may be
    /// talked to over v8's XSalsa20, which has no MAC (default false: the handshake then
    /// fails with [`HandshakeError::Unauthenticated`]). Two ims nodes that both offer it
    /// always get the authenticated transport (a man in the middle cannot strip the offer),
    /// so this only decides whether JS peers are reachable.
    pub fn allow_xsalsa20(mut self, allow: bool) -> Self {
        self.allow_xsalsa20 = allow;
        self
    }

    /// Whether to advertise the authenticated record transport (default true). With it off we
    /// behave exactly like a JS v8 peer.
    pub fn offer_aead(mut self, offer: bool) -> Self {
        self.offer_aead = offer;
        self
    }

    /// Whether to offer AES-256-GCM for the records (default: where the CPU has AES
    /// instructions). Has no effect without [`offer_aead`](Self::offer_aead).
    pub fn offer_aes_gcm(mut self, offer: bool) -> Self {
        self.offer_aes_gcm = offer;
        self
    }

    /// The key we dialled: the handshake fails unless the peer proves it holds this key.
    pub fn expected_remote(mut self, key: NodeId) -> Self {
        self.expected_remote = Some(key);
        self
    }

    /// How long the async driver waits for the whole handshake (default 20 s, v8's stream
    /// timeout, wire spec §9). `None` waits forever.
    pub fn timeout(mut self, limit: Option<std::time::Duration>) -> Self {
        self.timeout = limit;
        self
    }

    /// The configured handshake time limit.
    pub fn time_limit(&self) -> Option<std::time::Duration> {
        self.timeout
    }

    /// Test hook: use this ephemeral secret and this XSalsa20 nonce instead of random ones, to
    /// replay recorded handshakes byte for byte.
    #[cfg(feature = "test-utils")]
    pub fn fixed_for_testing(mut self, ephemeral_secret: [u8; 32], nonce: [u8; NONCE_LEN]) -> Self {
        self.fixed_ephemeral = Some(ephemeral_secret);
        self.fixed_nonce = Some(nonce);
        self
    }
}

/// Everything a finished handshake yields.
#[derive(Debug, Clone)]
pub struct HandshakeOutcome {
    /// Our role.
    pub role: Role,
    /// The peer's static key (its node id), proven by the handshake.
    pub remote_static_key: NodeId,
    /// The raw split keys (capability material for hypercore, wire spec §5).
    pub split: Split,
    /// The XSalsa20 nonce we sent.
    pub local_nonce: [u8; NONCE_LEN],
    /// The XSalsa20 nonce the peer sent (last payload received).
    pub remote_nonce: [u8; NONCE_LEN],
    /// The 64-byte Noise handshake hash (unused by v8).
    pub handshake_hash: [u8; 64],
    /// The negotiated transport.
    pub transport: Transport,
}

/// The handshake of one connection, stepped by a driver (see [`crate::stream::handshake`]).
///
/// Loop: while not [`is_finished`](Self::is_finished), if
/// [`is_my_turn`](Self::is_my_turn) send [`write_message`](Self::write_message), else feed the
/// next length-delimited message (see [`decode_length_prefix`]) to
/// [`read_message`](Self::read_message). Then call [`finish`](Self::finish).
pub struct Handshake {
    role: Role,
    state: HandshakeState,
    local: NoisePayload,
    remote: Option<NoisePayload>,
    expected_remote: Option<NodeId>,
    allow_xsalsa20: bool,
}

impl std::fmt::Debug for Handshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handshake").field("role", &self.role).field("finished", &self.is_finished()).finish()
    }
}

impl Handshake {
    /// Starts a handshake with our `identity` as the static key.
    pub fn new(role: Role, identity: &Identity, config: &HandshakeConfig) -> Result<Self, HandshakeError> {
        let params = PROTOCOL_NAME.parse().map_err(HandshakeError::Noise)?;
        #[allow(unused_mut)]
        let mut nonce = [0u8; NONCE_LEN];
        #[cfg(feature = "test-utils")]
        let fixed_nonce = config.fixed_nonce;
        #[cfg(not(feature = "test-utils"))]
        let fixed_nonce: Option<[u8; NONCE_LEN]> = None;
        match fixed_nonce {
            Some(n) => nonce = n,
            None => getrandom::fill(&mut nonce).map_err(|_| HandshakeError::Noise(snow::Error::Rng))?,
        }
        let builder = Builder::new(params).local_private_key(identity.secret_bytes())?.prologue(&[])?;
        #[cfg(feature = "test-utils")]
        let builder = match &config.fixed_ephemeral {
            Some(e) => builder.fixed_ephemeral_key_for_testing_only(e),
            None => builder,
        };
        let state = match role {
            Role::Initiator => builder.build_initiator()?,
            Role::Responder => builder.build_responder()?,
        };
        let ims_features = match (config.offer_aead, config.offer_aes_gcm) {
            (false, _) => 0,
            (true, false) => FEATURE_AEAD,
            (true, true) => FEATURE_AEAD | FEATURE_AES_GCM,
        };
        Ok(Self {
            role,
            state,
            local: NoisePayload { nonce, ims_features },
            remote: None,
            expected_remote: config.expected_remote,
            allow_xsalsa20: config.allow_xsalsa20,
        })
    }

    /// Whether the next step is ours to write.
    pub fn is_my_turn(&self) -> bool {
        !self.state.is_handshake_finished() && self.state.is_my_turn()
    }

    /// Whether all three messages have been exchanged.
    pub fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// Writes our next message, already framed (varint length ‖ message).
    pub fn write_message(&mut self) -> Result<Vec<u8>, HandshakeError> {
        if !self.is_my_turn() {
            return Err(HandshakeError::OutOfOrder("write_message when it is not our turn"));
        }
        let mut msg = vec![0u8; MAX_MESSAGE_LEN];
        let len = self.state.write_message(&self.local.encode(), &mut msg)?;
        let mut framed = Vec::with_capacity(len + 3);
        varint::encode(len as u64, &mut framed);
        framed.extend_from_slice(&msg[..len]);
        Ok(framed)
    }

    /// Reads one peer message (without its length prefix).
    pub fn read_message(&mut self, message: &[u8]) -> Result<(), HandshakeError> {
        if self.is_finished() || self.state.is_my_turn() {
            return Err(HandshakeError::OutOfOrder("read_message when it is not the peer's turn"));
        }
        let mut buf = vec![0u8; MAX_MESSAGE_LEN];
        let len = self.state.read_message(message, &mut buf)?;
        // JS keeps the last *non-empty* payload (simple-hypercore-protocol lib/handshake.js).
        if len > 0 {
            self.remote = Some(NoisePayload::decode(&buf[..len]).map_err(HandshakeError::BadPayload)?);
        }
        if let (Some(expected), Some(actual)) = (self.expected_remote, self.state.get_remote_static())
            && expected.as_bytes().as_slice() != actual
        {
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(actual);
            return Err(HandshakeError::UnexpectedPeer { expected, actual: NodeId::from_bytes(bytes) });
        }
        Ok(())
    }

    /// Finishes: the split, the peer's key and payload, and the negotiated transport.
    pub fn finish(mut self) -> Result<HandshakeOutcome, HandshakeError> {
        if !self.is_finished() {
            return Err(HandshakeError::OutOfOrder("finish before the handshake is done"));
        }
        let remote = self.remote.take().ok_or(HandshakeError::BadPayload("peer sent no payload"))?;
        let remote_static = <[u8; 32]>::try_from(self.state.get_remote_static().unwrap_or_default())
            .map_err(|_| HandshakeError::OutOfOrder("no remote static key"))?;
        let mut handshake_hash = [0u8; 64];
        handshake_hash.copy_from_slice(self.state.get_handshake_hash().get(..64).unwrap_or(&[0; 64]));
        let (c1, c2) = self.state.dangerously_get_raw_split();
        let split = match self.role {
            Role::Initiator => Split { tx: c1, rx: c2 },
            Role::Responder => Split { tx: c2, rx: c1 },
        };
        let both = self.local.ims_features & remote.ims_features;
        let transport = if both & FEATURE_AEAD == 0 {
            if !self.allow_xsalsa20 {
                return Err(HandshakeError::Unauthenticated);
            }
            Transport::XSalsa20
        } else if both & FEATURE_AES_GCM != 0 {
            Transport::Aead(AeadSuite::Aes256Gcm)
        } else {
            Transport::Aead(AeadSuite::ChaCha20Poly1305)
        };
        Ok(HandshakeOutcome {
            role: self.role,
            remote_static_key: NodeId::from_bytes(remote_static),
            split,
            local_nonce: self.local.nonce,
            remote_nonce: remote.nonce,
            handshake_hash,
            transport,
        })
    }
}

/// Splits one varint-length-prefixed handshake message off the front of `buf`.
///
/// `Ok(None)` means more bytes are needed; `Ok(Some((message, consumed)))` gives the message
/// and the bytes used including the prefix. A length above 65535 is an error at once, before
/// any of it is buffered.
pub fn decode_length_prefix(buf: &[u8]) -> Result<Option<(&[u8], usize)>, HandshakeError> {
    match varint::decode(buf) {
        Varint::Incomplete => Ok(None),
        Varint::TooLong => Err(HandshakeError::BadLength(u64::MAX)),
        Varint::Value(len, n) => {
            if len > MAX_MESSAGE_LEN as u64 {
                return Err(HandshakeError::BadLength(len));
            }
            let end = n + len as usize;
            Ok(buf.get(n..end).map(|m| (m, end)))
        }
    }
}
