//! `Have.bitfield` RLE against JS `bitfield-rle` 2.2.1 (`fixtures/vectors/bitfield-rle.json`,
//! made by `hypercore/tests/js/gen_rle_vectors.js`), plus proptest fuzzing (wire spec §8.3).

use hypercore::protocol::rle;
use proptest::prelude::*;

#[test]
fn encodings_match_js_byte_for_byte() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/vectors/bitfield-rle.json");
    let vectors: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("json");
    let cases = vectors["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 300);
    for (n, case) in cases.iter().enumerate() {
        let get = |k: &str| hex::decode(case[k].as_str().expect("hex")).expect("hex");
        let (bitfield, encoded, decoded) = (get("bitfield"), get("rle"), get("decoded"));
        assert_eq!(hex::encode(rle::encode(&bitfield)), hex::encode(&encoded), "case {n}: encode");
        assert_eq!(rle::decode(&encoded, 1 << 20).expect("decode"), decoded, "case {n}: decode");
    }
}

fn bitfield() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(
        prop_oneof![Just(0u8), Just(0xff), any::<u8>()]
            .prop_flat_map(|b| proptest::collection::vec(Just(b), 0..40)),
        0..8,
    )
    .prop_map(|runs| runs.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn roundtrip(bits in bitfield()) {
        let decoded = rle::decode(&rle::encode(&bits), 1 << 16).expect("decode");
        prop_assert_eq!(decoded.len() % 4, 0);
        // Trailing zero bytes are not encoded; everything else must come back.
        let common = decoded.len().min(bits.len());
        prop_assert_eq!(&decoded[..common], &bits[..common]);
        prop_assert!(decoded[common..].iter().chain(&bits[common..]).all(|b| *b == 0));
    }

    #[test]
    fn decoder_never_panics_and_respects_the_limit(input in proptest::collection::vec(any::<u8>(), 0..64), max in 0usize..4096) {
        if let Ok(out) = rle::decode(&input, max) {
            prop_assert!(out.len() <= max.next_multiple_of(4));
        }
    }
}
