//! `Session` (routing, extensions by name, capabilities, Close replies) replayed over the
//! recorded hypertrie session (`fixtures/vectors/wire-transcript.json`, wire spec §7, §10).

use hypercore::PublicKey;
use hypercore::protocol::{ChannelMessage, Event, FrameDecoder, Message, Session, SessionKeys};
use serde_json::Value;

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex")).expect("hex")
}

fn key32(v: &Value) -> [u8; 32] {
    hex_of(v).try_into().expect("32 bytes")
}

#[test]
fn hypertrie_session_routes_to_events() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/vectors/wire-transcript.json");
    let t: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let s = &t["sessions"][1];
    assert_eq!(s["name"], "hypertrie-sparse-get");
    let keys = &s["keys"];
    let feed = PublicKey::from_bytes(&hex_of(&keys["feedKey"])).expect("key");
    let split =
        |who: &str| SessionKeys::new(key32(&keys["split"][who]["tx"]), key32(&keys["split"][who]["rx"]));
    let mut sessions = [
        Session::new(split("initiator"), &["hypertrie"], &[]),
        Session::new(split("responder"), &["hypertrie"], &[]),
    ];

    // Our responder's opening messages are exactly JS's: Open then Options{["hypertrie"], ack:false}.
    let (_, r_open) = sessions[1].open(&feed).expect("open");
    let recorded: Vec<String> = s["chunks"].as_array().expect("chunks")[4..6]
        .iter()
        .map(|c| c["frames"][0]["frameHex"].as_str().expect("frame").to_owned())
        .collect();
    let ours: Vec<String> = r_open.iter().map(|m| hex::encode(m.to_frame().expect("encode"))).collect();
    assert_eq!(ours, recorded);
    sessions[0].open(&feed).expect("open");

    let mut events: Vec<(usize, Event)> = Vec::new();
    let mut decoders = [FrameDecoder::new(), FrameDecoder::new()];
    for chunk in s["chunks"].as_array().expect("chunks").iter().filter(|c| c["phase"] == "transport") {
        let to = if chunk["dir"] == "I->R" { 1 } else { 0 };
        decoders[to].extend(&hex_of(&chunk["plaintextHex"]));
        while let Some(frame) = decoders[to].next_frame().expect("frame") {
            if let Some(msg) = ChannelMessage::from_frame(frame).expect("message")
                && let Some(event) = sessions[to].on_message(msg).expect("no protocol error")
            {
                events.push((to, event));
            }
        }
    }
    let dk = feed.discovery_key();
    assert!(events.contains(&(1, Event::Joined { local_id: 1, discovery_key: dk })));
    assert!(events.contains(&(0, Event::Joined { local_id: 1, discovery_key: dk })));
    // The get → cache round trip arrives as named extension events.
    let ext: Vec<(usize, String)> = events
        .iter()
        .filter_map(|(to, e)| match e {
            Event::Extension { local_id: Some(1), name, payload } => {
                Some((*to, format!("{name}:{}", hex::encode(payload))))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        ext,
        [
            (1, "hypertrie:1a14080412106879706572636f72652f392e31322e30".to_owned()),
            (0, "hypertrie:0a08080210051a020402".to_owned())
        ]
    );
    let data = events
        .iter()
        .filter(|(to, e)| *to == 0 && matches!(e, Event::Message { message: Message::Data(_), .. }))
        .count();
    let requests = events
        .iter()
        .filter(|(to, e)| *to == 1 && matches!(e, Event::Message { message: Message::Request(_), .. }))
        .count();
    assert!(data > 0 && data == requests, "every Request got its Data ({requests} / {data})");
}

#[test]
fn unknown_feeds_unjoined_channels_and_stream_extensions() {
    let (a, b) = (SessionKeys::new([1; 32], [2; 32]), SessionKeys::new([2; 32], [1; 32]));
    let mut alice = Session::new(a, &[], &["ping"]);
    let mut bob = Session::new(b, &[], &["ping", "zzz"]);
    let feed = hypercore::KeyPair::from_seed(&[5; 32]).public;
    let (_, opens) = alice.open(&feed).expect("open");
    assert_eq!(opens.len(), 1, "no Options without feed extensions");
    // Bob has not opened the feed: a discovery-key event, and messages on it are dropped.
    assert_eq!(bob.on_message(opens[0].clone()), Ok(Some(Event::DiscoveryKey(feed.discovery_key()))));
    let want =
        ChannelMessage::new(1, Message::Want(hypercore::protocol::Want { start: 0, length: Some(1 << 20) }));
    assert_eq!(bob.on_message(want), Ok(None));
    // Stream extensions on channel 0, ids through the sender's list.
    assert_eq!(alice.on_message(bob.stream_options()), Ok(None));
    let msg = bob.extension(None, "ping", b"hi".to_vec()).expect("registered");
    assert_eq!(msg.channel, 0);
    alice.on_message(bob.stream_options()).expect("options");
    bob.on_message(alice.stream_options()).expect("options");
    assert_eq!(
        alice.on_message(msg),
        Ok(Some(Event::Extension { local_id: None, name: "ping".into(), payload: b"hi".to_vec() }))
    );
    // "zzz" is Bob's id 1; Alice does not have it: dropped.
    assert_eq!(alice.on_message(bob.extension(None, "zzz", vec![]).expect("registered")), Ok(None));
    assert!(bob.extension(None, "nope", vec![]).is_none());

    // Bob joins; Alice closes; Bob's session closes its side too and hands back the reply.
    let (bob_id, bob_opens) = bob.open(&feed).expect("bob opens, alice's capability checks out");
    assert!(matches!(alice.on_message(bob_opens[0].clone()), Ok(Some(Event::Joined { .. }))));
    let close = alice.close(1).expect("close");
    let event = bob.on_message(close).expect("ok");
    let reply = ChannelMessage::new(bob_id, Message::Close(hypercore::protocol::Close::default()));
    assert_eq!(event, Some(Event::Closed { discovery_key: feed.discovery_key(), reply: Some(reply) }));
    assert!(bob.channels().is_empty());
}
