//! Frame decoder limits, split/merged delivery, and channel tables (wire spec §6, §7.1, §7.4).

use hypercore::protocol::channel::MAX_CHANNELS;
use hypercore::protocol::{
    ChannelError, ChannelMessage, Channels, Close, Frame, FrameDecoder, FrameError, MAX_FRAME_LEN, Message,
    Open, RemoteOpen, SessionKeys, Status, Want, frame,
};
use hypercore::{KeyPair, PublicKey};

#[test]
fn one_gigabyte_declared_length_is_rejected_without_allocating() {
    // varint(2^30) = 80 80 80 80 04: rejected as soon as the length is known, with nothing
    // buffered beyond the five prefix bytes.
    let mut decoder = FrameDecoder::new();
    decoder.extend(&[0x80, 0x80, 0x80, 0x80, 0x04]);
    assert_eq!(decoder.next_frame(), Err(FrameError::TooLarge { len: 1 << 30 }));
    assert_eq!(decoder.buffered(), 5);
    // Even before the last prefix byte: four continuation bytes of 0xff already exceed 8 MiB.
    assert!(matches!(frame::decode(&[0xff, 0xff, 0xff, 0xff]), Err(FrameError::TooLarge { .. })));
    // We never write what a peer would reject: header + 8 MiB body is over the cap.
    let mut out = Vec::new();
    assert!(matches!(
        frame::encode(0, 0, &vec![0; MAX_FRAME_LEN as usize], &mut out),
        Err(FrameError::TooLarge { .. })
    ));
    assert!(out.is_empty());
}

#[test]
fn exactly_the_cap_is_accepted() {
    let body = vec![7u8; MAX_FRAME_LEN as usize - 1];
    let mut out = Vec::new();
    frame::encode(0, 15, &body, &mut out).expect("8 MiB frame");
    let (frame, used) = frame::decode(&out).expect("valid").expect("whole");
    assert_eq!(used, out.len());
    assert!(matches!(frame, Frame::Message { channel: 0, kind: 15, body: b } if b.len() == body.len()));
}

fn sample_stream() -> (Vec<u8>, Vec<ChannelMessage>) {
    let msgs = vec![
        ChannelMessage::new(1, Message::Status(Status::new(true, false))),
        ChannelMessage::new(1, Message::Want(Want { start: 0, length: Some(1 << 20) })),
        ChannelMessage::new(300, Message::Extension { id: 2, payload: vec![1, 2, 3] }),
        ChannelMessage::new(1, Message::Close(Close::default())),
    ];
    let mut wire = Vec::new();
    for (i, m) in msgs.iter().enumerate() {
        m.encode(&mut wire).expect("encode");
        if i == 1 {
            frame::encode_keepalive(&mut wire);
        }
    }
    (wire, msgs)
}

#[test]
fn frames_split_or_merged_arbitrarily_decode_the_same() {
    let (wire, msgs) = sample_stream();
    for chunk in [1usize, 2, 3, 7, wire.len()] {
        let mut decoder = FrameDecoder::new();
        let mut got = Vec::new();
        let mut keepalives = 0;
        for piece in wire.chunks(chunk) {
            decoder.extend(piece);
            while let Some(frame) = decoder.next_frame().expect("valid") {
                match ChannelMessage::from_frame(frame).expect("valid message") {
                    Some(m) => got.push(m),
                    None => keepalives += 1,
                }
            }
        }
        assert_eq!(got, msgs, "chunk size {chunk}");
        assert_eq!(keepalives, 1);
        assert_eq!(decoder.buffered(), 0);
    }
}

#[test]
fn channel_300_uses_a_multi_byte_header() {
    let frame =
        ChannelMessage::new(300, Message::Extension { id: 0, payload: vec![] }).to_frame().expect("encode");
    // header = 300 << 4 | 15 = 4815 = varint cf 25
    assert_eq!(frame, [0x03, 0xcf, 0x25, 0x00]);
}

fn keys_pair() -> (SessionKeys, SessionKeys) {
    let (a, b) = ([1u8; 32], [2u8; 32]);
    (SessionKeys::new(a, b), SessionKeys::new(b, a))
}

fn feed(n: u8) -> PublicKey {
    KeyPair::from_seed(&[n; 32]).public
}

#[test]
fn local_ids_start_at_one_and_reuse_the_lowest_free() {
    let (k, _) = keys_pair();
    let mut ch = Channels::new(k);
    let ids: Vec<u64> = (0..3).map(|n| ch.open(&feed(n)).expect("open").0).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(ch.close(2).expect("close"), ChannelMessage::new(2, Message::Close(Close::default())));
    assert_eq!(ch.open(&feed(9)).expect("reopen").0, 2);
    assert_eq!(ch.open(&feed(0)), Err(ChannelError::AlreadyOpen { discovery_key: feed(0).discovery_key() }));
    assert_eq!(ch.close(42), Err(ChannelError::UnknownLocalChannel(42)));
}

#[test]
fn opens_meet_in_either_order_and_capabilities_are_checked() {
    let (ka, kb) = keys_pair();
    let (mut a, mut b) = (Channels::new(ka), Channels::new(kb));
    let key = feed(1);
    // a opens first; b learns of an unknown feed, opens it, and checks a's stored capability.
    let (a_id, a_open) = a.open(&key).expect("a opens");
    let Message::Open(a_open) = a_open.message else { panic!() };
    assert_eq!(b.on_open(a_id, &a_open), Ok(RemoteOpen::Unknown { discovery_key: key.discovery_key() }));
    let (b_id, b_open) = b.open(&key).expect("b opens, a's capability checks out");
    let Message::Open(b_open) = b_open.message else { panic!() };
    assert_eq!(a.on_open(b_id, &b_open), Ok(RemoteOpen::Joined { local_id: a_id, remote_id: b_id }));
    assert_eq!(b.route(a_id), Some(b_id));

    // Closing: a closes, b is told its own channel is still open and answers.
    let close = a.close(a_id).expect("close");
    let Message::Close(c) = &close.message else { panic!() };
    let rc = b.on_close(close.channel, c).expect("known");
    assert_eq!(rc.local_id, Some(b_id));
    assert!(b.route(a_id).is_none());
}

#[test]
fn a_wrong_capability_is_rejected_in_both_orders() {
    let (ka, kb) = keys_pair();
    let key = feed(1);
    let forged =
        Open { discovery_key: key.discovery_key().as_bytes().to_vec(), capability: Some(vec![0xaa; 32]) };
    // We opened first: the forged Open destroys the stream.
    let mut b = Channels::new(kb.clone());
    b.open(&key).expect("open");
    assert_eq!(
        b.on_open(1, &forged),
        Err(ChannelError::BadCapability { discovery_key: key.discovery_key() })
    );
    // The peer opened first: our later open fails, and we refuse with Close{discoveryKey}.
    let mut b = Channels::new(kb);
    b.on_open(1, &forged).expect("stored");
    assert!(matches!(b.open(&key), Err(ChannelError::BadCapability { .. })));
    let refusal = b.close_unopened(&key.discovery_key()).expect("refusal");
    assert_eq!(refusal.channel, 1);
    assert!(
        matches!(&refusal.message, Message::Close(Close { discovery_key: Some(dk) }) if dk == key.discovery_key().as_bytes())
    );
    // The side that opened sees the refusal on an unknown channel, naming its feed.
    let mut a = Channels::new(ka);
    let (a_id, _) = a.open(&key).expect("open");
    let Message::Close(c) = &refusal.message else { panic!() };
    assert_eq!(a.on_close(refusal.channel, c).and_then(|r| r.local_id), Some(a_id));
}

#[test]
fn peer_channel_abuse_is_bounded() {
    let (_, kb) = keys_pair();
    let mut b = Channels::new(kb);
    let open = |n: u64| Open {
        discovery_key: {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&n.to_le_bytes());
            k.to_vec()
        },
        capability: None,
    };
    assert!(b.on_open(7, &open(1)).is_ok());
    assert_eq!(b.on_open(7, &open(2)), Err(ChannelError::DuplicateRemoteChannel { remote_id: 7 }));
    assert!(matches!(b.on_open(8, &open(1)), Err(ChannelError::DuplicateRemoteFeed { .. })));
    for n in 2..=MAX_CHANNELS as u64 {
        b.on_open(1000 + n, &open(n)).expect("within the cap");
    }
    assert_eq!(b.on_open(u64::MAX, &open(u64::MAX)), Err(ChannelError::TooManyChannels));
    assert_eq!(
        b.on_open(5, &Open { discovery_key: vec![1; 5], capability: None }),
        Err(ChannelError::BadOpen)
    );
}
