//! Proptest-driven fuzzing of the wire decoders (wire spec §6–7): arbitrary peer bytes never
//! panic, and every message survives encode → decode unchanged. A bounded run (a few hundred
//! cases each) is part of the normal suite.

use hypercore::protocol::{
    Cancel, ChannelMessage, Close, Data, DataNode, FrameDecoder, Have, Message, Open, Options, Request,
    Status, Unhave, Unwant, Want, frame,
};
use hypercore::protocol::{Session, SessionKeys};
use proptest::prelude::*;

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 32)
}

fn varint() -> impl Strategy<Value = u64> {
    0u64..(1 << 56)
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (key(), proptest::option::of(key()))
            .prop_map(|(discovery_key, capability)| Message::Open(Open { discovery_key, capability })),
        (proptest::collection::vec("[a-z]{0,12}", 0..4), proptest::option::of(any::<bool>()))
            .prop_map(|(extensions, ack)| Message::Options(Options { extensions, ack })),
        (proptest::option::of(any::<bool>()), proptest::option::of(any::<bool>()))
            .prop_map(|(uploading, downloading)| Message::Status(Status { uploading, downloading })),
        (
            varint(),
            proptest::option::of(varint()),
            proptest::option::of(bytes(16)),
            proptest::option::of(any::<bool>())
        )
            .prop_map(|(start, length, bitfield, ack)| Message::Have(Have {
                start,
                length,
                bitfield,
                ack
            })),
        (varint(), proptest::option::of(varint()))
            .prop_map(|(start, length)| Message::Unhave(Unhave { start, length })),
        (varint(), proptest::option::of(varint()))
            .prop_map(|(start, length)| Message::Want(Want { start, length })),
        (varint(), proptest::option::of(varint()))
            .prop_map(|(start, length)| Message::Unwant(Unwant { start, length })),
        (
            varint(),
            proptest::option::of(varint()),
            proptest::option::of(any::<bool>()),
            proptest::option::of(varint())
        )
            .prop_map(|(index, bytes, hash, nodes)| Message::Request(Request {
                index,
                bytes,
                hash,
                nodes
            })),
        (varint(), proptest::option::of(varint()), proptest::option::of(any::<bool>()))
            .prop_map(|(index, bytes, hash)| Message::Cancel(Cancel { index, bytes, hash })),
        (
            varint(),
            proptest::option::of(bytes(64)),
            proptest::collection::vec(
                (varint(), key(), varint()).prop_map(|(index, hash, size)| DataNode { index, hash, size }),
                0..4
            ),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 64)),
        )
            .prop_map(|(index, value, nodes, signature)| Message::Data(Data {
                index,
                value: value.map(Into::into),
                nodes,
                signature
            })),
        proptest::option::of(key()).prop_map(|discovery_key| Message::Close(Close { discovery_key })),
        (varint(), bytes(32)).prop_map(|(id, payload)| Message::Extension { id, payload }),
        (11u8..=14, bytes(16)).prop_map(|(kind, body)| Message::Unknown { kind, body }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn frame_decoder_never_panics(input in bytes(256), cut in 0usize..256) {
        let mut decoder = FrameDecoder::new();
        let cut = cut.min(input.len());
        for piece in [&input[..cut], &input[cut..]] {
            decoder.extend(piece);
            while let Ok(Some(f)) = decoder.next_frame() {
                let _ = ChannelMessage::from_frame(f);
            }
        }
    }

    #[test]
    fn message_decoder_never_panics(kind in 0u8..16, body in bytes(200)) {
        if let Ok(msg) = Message::decode(kind, &body) {
            prop_assert_eq!(msg.kind(), kind);
        }
    }

    #[test]
    fn messages_roundtrip_through_frames(channel in 0u64..1 << 20, msg in message()) {
        let cm = ChannelMessage::new(channel, msg);
        let wire = cm.to_frame().expect("encode");
        let (f, used) = frame::decode(&wire).expect("valid").expect("whole");
        prop_assert_eq!(used, wire.len());
        let back = ChannelMessage::from_frame(f).expect("decode").expect("not a keepalive");
        prop_assert_eq!(&back, &cm);
        // And re-encoding is byte-stable.
        prop_assert_eq!(back.to_frame().expect("encode"), wire);
    }

    #[test]
    fn session_survives_any_message_sequence(
        seq in proptest::collection::vec((0u64..4, message()), 0..40),
        open_first in any::<bool>(),
    ) {
        let mut session = Session::new(SessionKeys::new([1; 32], [2; 32]), &["hypertrie"], &["s"]);
        if open_first {
            let (_, msgs) = session.open(&hypercore::KeyPair::from_seed(&[9; 32]).public).expect("open");
            prop_assert_eq!(msgs.len(), 2);
        }
        for (channel, message) in seq {
            // Errors are fine (the connection would be dropped); panics are not.
            if session.on_message(ChannelMessage::new(channel, message)).is_err() {
                break;
            }
        }
    }
}

proptest! {
    // 256 cases in the suite; PROPTEST_CASES=N for a long run by hand (issue 16).
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    /// Valid frames with bytes flipped, inserted or cut: the decoder gives an error, waits
    /// for more, or yields messages; it never panics.
    #[test]
    fn mutated_frames_never_panic(
        channel in 0u64..1 << 20,
        msgs in proptest::collection::vec(message(), 1..4),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
    ) {
        let mut wire = Vec::new();
        for m in msgs {
            wire.extend(ChannelMessage::new(channel, m).to_frame().expect("encode"));
        }
        for (at, x, op) in edits {
            let n = wire.len().max(1);
            match op % 3 {
                0 if !wire.is_empty() => wire[at % n] ^= x.max(1),
                1 => wire.truncate(at % (n + 1)),
                _ => wire.insert(at % (wire.len() + 1), x),
            }
        }
        let mut decoder = FrameDecoder::new();
        decoder.extend(&wire);
        while let Ok(Some(f)) = decoder.next_frame() {
            if let Ok(Some(cm)) = ChannelMessage::from_frame(f) {
                // What decodes re-encodes.
                let _ = cm.to_frame();
            }
        }
    }
}
