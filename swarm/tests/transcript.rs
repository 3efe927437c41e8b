//! Replays the JS-recorded v8 sessions (`fixtures/vectors/wire-transcript.json`, wire spec §3–4)
//! through swarm's handshake and transport, byte for byte.

use serde_json::Value;
use swarm::noise::Handshake;
use swarm::{HandshakeConfig, Identity, Role, Transport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn transcript() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/vectors/wire-transcript.json");
    serde_json::from_str(&std::fs::read_to_string(path).expect("read transcript")).expect("parse transcript")
}

fn hex_of(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn arr<const N: usize>(v: &Value) -> [u8; N] {
    hex_of(v).try_into().expect("fixed-size key")
}

/// The identity and fixed-randomness config of one side of a recorded session.
fn side(session: &Value, who: &str) -> (Identity, HandshakeConfig) {
    let keys = &session["keys"];
    let identity = Identity::from_secret_bytes(arr(&keys[who]["noiseStaticSecretKey"]));
    assert_eq!(identity.public_key().to_hex(), keys[who]["noiseStaticPublicKey"].as_str().expect("pk"));
    let config = HandshakeConfig::v8_compatible()
        .fixed_for_testing(arr(&keys["ephemeral"][who]["secretKey"]), arr(&keys["xsalsa20Nonces"][who]));
    (identity, config)
}

fn chunks<'a>(session: &'a Value, phase: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    session["chunks"].as_array().expect("chunks").iter().filter(move |c| c["phase"] == phase)
}

#[test]
fn identities_from_seed_texts_match_js_key_pair() {
    for session in transcript()["sessions"].as_array().expect("sessions") {
        let keys = &session["keys"];
        // Only the first session records its seed texts; gen-wire.js names the other's.
        let trie = session["name"] == "hypertrie-sparse-get";
        for who in ["initiator", "responder"] {
            let seed_text = match (trie, who) {
                (true, "initiator") => "wire-gen trie reader noise seed",
                (true, _) => "wire-gen trie writer noise seed",
                _ => keys["noiseSeedTexts"][who].as_str().expect("seed text"),
            };
            // gen.js: keyPair(BLAKE2b-256(seedText)); keyPair(seed) hashes the seed once more.
            use blake2::Digest;
            let seed = blake2::Blake2b::<blake2::digest::consts::U32>::digest(seed_text.as_bytes());
            let id = Identity::from_seed(&seed);
            assert_eq!(
                id.public_key().to_hex(),
                keys[who]["noiseStaticPublicKey"].as_str().expect("pk"),
                "{who}"
            );
        }
    }
}

#[test]
fn handshake_messages_and_split_replay_byte_for_byte() {
    for session in transcript()["sessions"].as_array().expect("sessions") {
        let name = session["name"].as_str().expect("name");
        let (ii, ic) = side(session, "initiator");
        let (ri, rc) = side(session, "responder");
        let mut init = Handshake::new(Role::Initiator, &ii, &ic).expect("initiator");
        let mut resp = Handshake::new(Role::Responder, &ri, &rc).expect("responder");
        for chunk in chunks(session, "handshake") {
            let wire = hex_of(&chunk["hex"]);
            let (writer, reader) =
                if chunk["dir"] == "I->R" { (&mut init, &mut resp) } else { (&mut resp, &mut init) };
            let ours = writer.write_message().expect("write");
            assert_eq!(
                hex::encode(&ours),
                hex::encode(&wire),
                "{name}: noise message {}",
                chunk["noiseMessage"]
            );
            let (msg, used) = swarm::noise::decode_length_prefix(&ours).expect("prefix").expect("whole");
            assert_eq!(used, ours.len());
            reader.read_message(msg).expect("read");
        }
        let (i, r) = (init.finish().expect("finish i"), resp.finish().expect("finish r"));
        let split = &session["keys"]["split"];
        assert_eq!(i.split.tx, arr::<32>(&split["initiator"]["tx"]), "{name}");
        assert_eq!(i.split.rx, arr::<32>(&split["initiator"]["rx"]), "{name}");
        assert_eq!(r.split.tx, arr::<32>(&split["responder"]["tx"]), "{name}");
        assert_eq!(r.split.rx, arr::<32>(&split["responder"]["rx"]), "{name}");
        assert_eq!(i.handshake_hash.to_vec(), hex_of(&session["keys"]["handshakeHash"]), "{name}");
        assert_eq!(i.remote_static_key, ri.public_key());
        assert_eq!(r.remote_static_key, ii.public_key());
        assert_eq!((i.transport, r.transport), (Transport::XSalsa20, Transport::XSalsa20));
        assert_eq!(i.remote_nonce, r.local_nonce);
    }
}

#[test]
fn transport_keystream_reencrypts_each_direction() {
    for session in transcript()["sessions"].as_array().expect("sessions") {
        let keys = &session["keys"];
        for (dir, who) in [("I->R", "initiator"), ("R->I", "responder")] {
            let mut ks = swarm::cipher::KeyStream::new(
                &arr(&keys["split"][who]["tx"]),
                &arr(&keys["xsalsa20Nonces"][who]),
            );
            let mut count = 0;
            for chunk in chunks(session, "transport").filter(|c| c["dir"] == dir) {
                let mut bytes = hex_of(&chunk["plaintextHex"]);
                ks.apply(&mut bytes);
                assert_eq!(hex::encode(bytes), chunk["hex"].as_str().expect("hex"), "seq {}", chunk["seq"]);
                count += 1;
            }
            assert!(count > 3, "{dir} has transport chunks");
        }
    }
}

/// Drives the real async initiator against a scripted responder that replays the recorded
/// R->I bytes; the initiator must put exactly the recorded I->R bytes on the wire and
/// decrypt exactly the recorded R->I plaintext.
#[tokio::test]
async fn secure_stream_replays_initiator_side() {
    for session in transcript()["sessions"].as_array().expect("sessions") {
        let (ii, ic) = side(session, "initiator");
        let wire = |dir: &str| -> Vec<u8> {
            session["chunks"]
                .as_array()
                .expect("chunks")
                .iter()
                .filter(|c| c["dir"] == dir)
                .flat_map(|c| hex_of(&c["hex"]))
                .collect()
        };
        let plain = |dir: &str| -> Vec<Vec<u8>> {
            chunks(session, "transport")
                .filter(|c| c["dir"] == dir)
                .map(|c| hex_of(&c["plaintextHex"]))
                .collect()
        };
        let (i_to_r, r_to_i) = (wire("I->R"), wire("R->I"));
        let (r_plain, i_plain) = (plain("R->I").concat(), plain("I->R"));
        let hs: Vec<&Value> = chunks(session, "handshake").collect();
        let msg2 = hex_of(&hs[1]["hex"]);

        let (ours, mut peer) = tokio::io::duplex(1 << 20);
        let expected_len = i_to_r.len();
        let peer_task = tokio::spawn(async move {
            let mut got = vec![0u8; expected_len];
            // msg1 is 59 bytes; answer with the recorded msg2, then read the rest.
            peer.read_exact(&mut got[..59]).await.expect("msg1");
            peer.write_all(&msg2).await.expect("msg2");
            peer.write_all(&r_to_i[msg2.len()..]).await.expect("transport");
            peer.read_exact(&mut got[59..]).await.expect("rest");
            got
        });
        let mut stream = swarm::handshake(ours, Role::Initiator, &ii, &ic).await.expect("handshake");
        assert!(!stream.is_authenticated());
        for chunk in &i_plain {
            stream.write_all(chunk).await.expect("write");
        }
        stream.flush().await.expect("flush");
        let mut received = vec![0u8; r_plain.len()];
        stream.read_exact(&mut received).await.expect("read");
        assert_eq!(hex::encode(&received), hex::encode(&r_plain));
        let got = peer_task.await.expect("peer");
        assert_eq!(hex::encode(got), hex::encode(i_to_r));
    }
}
