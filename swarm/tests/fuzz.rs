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
