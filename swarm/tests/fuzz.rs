//! Proptest-driven fuzzing of swarm's decoders: peer bytes never panic.

use proptest::prelude::*;
use swarm::noise::payload::NoisePayload;
use swarm::noise::{Handshake, decode_length_prefix};
use swarm::{HandshakeConfig, Identity, Role};

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn payload_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = NoisePayload::decode(&bytes);
    }

    #[test]
    fn payload_roundtrips(nonce in any::<[u8; 24]>(), features in 0u64..(1 << 56)) {
        let p = NoisePayload { nonce, ims_features: features };
        prop_assert_eq!(NoisePayload::decode(&p.encode()), Ok(p));
    }

    #[test]
    fn length_prefix_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..16)) {
        if let Ok(Some((msg, used))) = decode_length_prefix(&bytes) {
            prop_assert!(used <= bytes.len() && msg.len() < used);
        }
    }

    #[test]
    fn responder_survives_garbage_msg1(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let id = Identity::from_seed(b"fuzz");
        let mut r = Handshake::new(Role::Responder, &id, &HandshakeConfig::default()).expect("new");
        let _ = r.read_message(&bytes);
    }

    #[test]
    fn initiator_survives_garbage_msg2(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let id = Identity::from_seed(b"fuzz");
        let mut i = Handshake::new(Role::Initiator, &id, &HandshakeConfig::default()).expect("new");
        i.write_message().expect("msg1");
        prop_assert!(i.read_message(&bytes).is_err());
    }
}

/// Outcomes of a real handshake between two fixed identities, for both transports.
fn outcomes(aead: bool) -> (swarm::HandshakeOutcome, swarm::HandshakeOutcome) {
    let config = HandshakeConfig::default().offer_aead(aead).allow_xsalsa20(!aead);
    let (a, b) = (Identity::from_seed(b"fuzz a"), Identity::from_seed(b"fuzz b"));
    let mut i = Handshake::new(Role::Initiator, &a, &config).expect("i");
    let mut r = Handshake::new(Role::Responder, &b, &config).expect("r");
    for step in 0..3 {
        let (w, rd) = if step % 2 == 0 { (&mut i, &mut r) } else { (&mut r, &mut i) };
        let msg = w.write_message().expect("write");
        let (body, _) = decode_length_prefix(&msg).expect("prefix").expect("whole");
        rd.read_message(body).expect("read");
    }
    (i.finish().expect("i"), r.finish().expect("r"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arbitrary bytes after the handshake (split between the overflow and later reads) never
    /// panic the secure stream; with AEAD they are rejected (or wait for a longer record).
    #[test]
    fn secure_stream_survives_arbitrary_transport_bytes(
        aead in any::<bool>(),
        overflow in proptest::collection::vec(any::<u8>(), 0..64),
        later in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
        let (_, outcome) = outcomes(aead);
        let result = rt.block_on(async move {
            let (ours, mut theirs) = tokio::io::duplex(8192);
            theirs.write_all(&later).await.expect("write");
            drop(theirs);
            let mut stream = swarm::SecureStream::new(ours, outcome, overflow);
            let mut out = Vec::new();
            stream.read_to_end(&mut out).await.map(|_| out.len())
        });
        if aead {
            // Random bytes essentially never form a valid record: an error or nothing at all.
            prop_assert!(matches!(result, Err(_) | Ok(0)));
        } else {
            prop_assert!(result.is_ok());
        }
    }
}
