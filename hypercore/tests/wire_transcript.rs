//! Replays the JS-recorded v8 sessions (`fixtures/vectors/wire-transcript.json`) through the
//! whole wire stack: swarm's handshake → split → XSalsa20, then hypercore's frame decoder,
//! message codec and channel/capability checks, byte for byte (wire spec §2–7).

use hypercore::protocol::{
    ChannelMessage, Channels, Frame, FrameDecoder, Message, RemoteOpen, SessionKeys, frame,
};
use hypercore::{DiscoveryKey, PublicKey};
use serde_json::{Value, json};
use swarm::noise::Handshake;
use swarm::{HandshakeConfig, Identity, Role};

fn transcript() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/vectors/wire-transcript.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read transcript")).expect("parse transcript")
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    hex_of(v).try_into().expect("fixed size")
}

fn opt_hex<B: AsRef<[u8]>>(v: &Option<B>) -> Value {
    v.as_ref().map_or(Value::Null, |b| json!(hex::encode(b)))
}

/// Our decoded message in the JSON shape of the transcript's `decoded` (JS decode defaults
/// applied through the accessors).
fn as_json(msg: &Message) -> Value {
    match msg {
        Message::Open(m) => {
            json!({"discoveryKey": hex::encode(&m.discovery_key), "capability": opt_hex(&m.capability)})
        }
        Message::Options(m) => json!({"extensions": m.extensions, "ack": m.ack()}),
        Message::Status(m) => json!({"uploading": m.uploading(), "downloading": m.downloading()}),
        Message::Have(m) => {
            json!({"start": m.start, "length": m.length(), "bitfield": opt_hex(&m.bitfield), "ack": m.ack()})
        }
        Message::Want(m) => json!({"start": m.start, "length": m.length()}),
        Message::Request(m) => {
            json!({"index": m.index, "bytes": m.bytes(), "hash": m.hash(), "nodes": m.nodes()})
        }
        Message::Data(m) => json!({
            "index": m.index,
            "value": opt_hex(&m.value),
            "nodes": m.nodes.iter().map(|n| json!({"index": n.index, "hash": hex::encode(&n.hash), "size": n.size})).collect::<Vec<_>>(),
            "signature": opt_hex(&m.signature),
        }),
        Message::Close(m) => json!({"discoveryKey": opt_hex(&m.discovery_key)}),
        Message::Extension { id, payload } => json!({"extensionId": id, "payloadHex": hex::encode(payload)}),
        other => panic!("transcript has no {other:?}"),
    }
}

/// Runs the recorded handshake through swarm's state machines; returns (initiator, responder)
/// session keys, checked against the recorded split.
fn handshake(session: &Value) -> (SessionKeys, SessionKeys) {
    let keys = &session["keys"];
    let side = |who: &str| {
        let id = Identity::from_secret_bytes(arr(&keys[who]["noiseStaticSecretKey"]));
        let cfg = HandshakeConfig::v8_compatible()
            .fixed_for_testing(arr(&keys["ephemeral"][who]["secretKey"]), arr(&keys["xsalsa20Nonces"][who]));
        (id, cfg)
    };
    let ((ii, ic), (ri, rc)) = (side("initiator"), side("responder"));
    let mut i = Handshake::new(Role::Initiator, &ii, &ic).expect("initiator");
    let mut r = Handshake::new(Role::Responder, &ri, &rc).expect("responder");
    for chunk in session["chunks"].as_array().expect("chunks").iter().filter(|c| c["phase"] == "handshake") {
        let (w, rd) = if chunk["dir"] == "I->R" { (&mut i, &mut r) } else { (&mut r, &mut i) };
        let msg = w.write_message().expect("write");
        assert_eq!(hex::encode(&msg), chunk["hex"].as_str().expect("hex"));
        rd.read_message(&msg[1..]).expect("read");
    }
    let (i, r) = (i.finish().expect("i"), r.finish().expect("r"));
    assert_eq!(i.split.tx, arr::<32>(&keys["split"]["initiator"]["tx"]));
    (SessionKeys::new(i.split.tx, i.split.rx), SessionKeys::new(r.split.tx, r.split.rx))
}

#[test]
fn every_frame_decodes_reencodes_and_capabilities_verify() {
    let mut frames_checked = 0;
    for session in transcript()["sessions"].as_array().expect("sessions") {
        let name = session["name"].as_str().expect("name");
        let keys = &session["keys"];
        let feed_key = PublicKey::from_bytes(&hex_of(&keys["feedKey"])).expect("feed key");
        assert_eq!(feed_key.discovery_key(), DiscoveryKey::from_bytes(arr(&keys["discoveryKey"])), "{name}");
        let (i_keys, r_keys) = handshake(session);
        // Each side's channel table: it opens the feed, then sees the peer's Open.
        let mut tables = [Channels::new(i_keys.clone()), Channels::new(r_keys.clone())];
        for (t, k) in tables.iter_mut().zip([&i_keys, &r_keys]) {
            let (id, open) = t.open(&feed_key).expect("open");
            assert_eq!(id, 1);
            let Message::Open(o) = &open.message else { panic!("not an Open") };
            assert_eq!(o.capability.as_deref(), Some(k.capability(&feed_key).as_slice()));
        }
        if let Some(caps) = keys.get("capabilities") {
            assert_eq!(i_keys.capability(&feed_key), arr::<32>(&caps["initiatorSends"]));
            assert_eq!(r_keys.capability(&feed_key), arr::<32>(&caps["responderSends"]));
        }

        for (dir, sender, receiver) in [("I->R", "initiator", 1usize), ("R->I", "responder", 0usize)] {
            let split_tx = arr::<32>(&keys["split"][sender]["tx"]);
            let mut ks = swarm::cipher::KeyStream::new(&split_tx, &arr(&keys["xsalsa20Nonces"][sender]));
            let mut decoder = FrameDecoder::new();
            let chunks: Vec<&Value> = session["chunks"]
                .as_array()
                .expect("chunks")
                .iter()
                .filter(|c| c["dir"] == dir && c["phase"] == "transport")
                .collect();
            for chunk in chunks {
                let mut bytes = hex_of(&chunk["hex"]);
                ks.apply(&mut bytes);
                assert_eq!(
                    hex::encode(&bytes),
                    chunk["plaintextHex"].as_str().expect("plaintext"),
                    "{name} seq {}",
                    chunk["seq"]
                );
                decoder.extend(&bytes);
                for expected in chunk["frames"].as_array().expect("frames") {
                    let frame = decoder.next_frame().expect("valid frame").expect("whole frame");
                    frames_checked += 1;
                    let Some(msg) = ChannelMessage::from_frame(frame).expect("valid message") else {
                        assert_eq!(frame, Frame::Keepalive);
                        assert_eq!(expected["kind"], "keepalive");
                        let mut ka = Vec::new();
                        frame::encode_keepalive(&mut ka);
                        assert_eq!(ka, [0]);
                        continue;
                    };
                    let ctx = format!("{name} seq {} {}", chunk["seq"], expected["typeName"]);
                    assert_eq!(msg.channel, expected["channel"].as_u64().expect("channel"), "{ctx}");
                    assert_eq!(
                        u64::from(msg.message.kind()),
                        expected["type"].as_u64().expect("type"),
                        "{ctx}"
                    );
                    // Decoded fields, JS defaults included.
                    let want = &expected["decoded"];
                    let got = as_json(&msg.message);
                    for (field, value) in got.as_object().expect("object") {
                        assert_eq!(&want[field], value, "{ctx}: field {field}");
                    }
                    // Byte-identical re-encoding.
                    assert_eq!(
                        hex::encode(msg.to_frame().expect("encode")),
                        expected["frameHex"].as_str().expect("frameHex"),
                        "{ctx}"
                    );
                    // Channel bookkeeping on the receiving side.
                    match &msg.message {
                        Message::Open(open) => {
                            let joined =
                                tables[receiver].on_open(msg.channel, open).expect("capability verifies");
                            assert_eq!(
                                joined,
                                RemoteOpen::Joined { local_id: 1, remote_id: msg.channel },
                                "{ctx}"
                            );
                        }
                        Message::Close(close) => {
                            let closed =
                                tables[receiver].on_close(msg.channel, close).expect("known channel");
                            assert_eq!(closed.discovery_key, feed_key.discovery_key());
                        }
                        _ => assert_eq!(tables[receiver].route(msg.channel), Some(1), "{ctx}"),
                    }
                }
            }
            assert_eq!(decoder.buffered(), 0, "{name} {dir}: trailing bytes");
        }
    }
    assert_eq!(frames_checked, 35, "every recorded frame (both sessions) is checked");
}

#[test]
fn a_capability_from_another_session_is_rejected() {
    let sessions = transcript();
    let sessions = sessions["sessions"].as_array().expect("sessions");
    let (_, r_keys) = handshake(&sessions[0]);
    let feed_key = PublicKey::from_bytes(&hex_of(&sessions[0]["keys"]["feedKey"])).expect("key");
    let mut responder = Channels::new(r_keys);
    responder.open(&feed_key).expect("open");
    // Replaying the initiator's Open from session 0 with session 1's split keys must fail.
    let (i_keys_other, _) = handshake(&sessions[1]);
    let forged = hypercore::protocol::Open {
        discovery_key: feed_key.discovery_key().as_bytes().to_vec(),
        capability: Some(i_keys_other.capability(&feed_key).to_vec()),
    };
    assert!(matches!(
        responder.on_open(1, &forged),
        Err(hypercore::protocol::ChannelError::BadCapability { .. })
    ));
    let missing = hypercore::protocol::Open { capability: None, ..forged };
    assert!(responder.on_open(2, &missing).is_err());
}

/// The recorded Requests' digests are what a Rust replica computes, and the recorded Data
/// replies (proofs + signatures made by JS) verify in a Rust replica (wire spec §8.5–8.7).
#[tokio::test]
async fn recorded_requests_and_data_match_a_rust_replica() {
    let t = transcript();
    let session = &t["sessions"][0];
    assert_eq!(session["name"], "hypercore-sparse-get");
    let feed_key = PublicKey::from_bytes(&hex_of(&session["keys"]["feedKey"])).expect("key");
    let replica = hypercore::FeedBuilder::new(hypercore::Storage::memory())
        .public_key(feed_key)
        .open()
        .await
        .expect("replica");
    let frames: Vec<&Value> = session["chunks"]
        .as_array()
        .expect("chunks")
        .iter()
        .flat_map(|c| c["frames"].as_array().into_iter().flatten())
        .filter(|f| f["kind"] == "message")
        .collect();
    let mut verified = Vec::new();
    let mut pending: Option<(u64, u64)> = None;
    for f in frames {
        let msg =
            Message::decode(f["type"].as_u64().expect("type") as u8, &hex_of(&f["bodyHex"])).expect("decode");
        match msg {
            // Only the first two fetches (blocks 3 and 1) happen before the live append, while
            // the replica's view of the feed is the writer's; stop at the append.
            Message::Have(h) if h.start == 5 => break,
            Message::Request(r) => pending = Some((r.index, r.nodes())),
            Message::Data(d) => {
                let (index, digest) = pending.take().expect("a request precedes each Data");
                assert_eq!(d.index, index);
                assert_eq!(replica.digest(index), digest, "digest for block {index}");
                let proof = hypercore::Proof {
                    index: d.index,
                    nodes: d
                        .nodes
                        .iter()
                        .map(|n| hypercore::Node {
                            index: n.index,
                            hash: n.hash.as_slice().try_into().expect("hash"),
                            size: n.size,
                        })
                        .collect(),
                    signature: d
                        .signature
                        .as_deref()
                        .map(|s| hypercore::Signature::from_bytes(s).expect("sig")),
                };
                let value: Vec<u8> = d.value.expect("value").into();
                replica.put(d.index, &value, &proof).await.expect("JS proof verifies");
                // A flipped bit in the value must not verify on a fresh replica.
                let fresh = hypercore::FeedBuilder::new(hypercore::Storage::memory())
                    .public_key(feed_key)
                    .open()
                    .await
                    .expect("fresh");
                let mut bad = value.clone();
                bad[0] ^= 1;
                if index == 3 {
                    assert!(fresh.put(index, &bad, &proof).await.is_err(), "tampered block {index} accepted");
                }
                verified.push((index, String::from_utf8(value).expect("utf8")));
            }
            _ => {}
        }
    }
    assert_eq!(verified, [(3, "block #3".to_string()), (1, "block #1".to_string())]);
}
