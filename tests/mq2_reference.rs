//! The JavaScript reference generator for members' apps (`clients/js/mq2.js`) and the
//! edge's own (`domain::mq2`) make identical chains and codes for the same seed and
//! time, and the edge verifies what the JavaScript makes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use base64::Engine;
use mps_edge::domain::mq2;

const CARD: &str = "5b1f0e2a-9c3d-4e7f-8a6b-0c1d2e3f4a5b";

fn b64(v: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v)
}

/// Seed, slot seconds, slots, epoch in ms, times after the epoch in s.
type Case = ([u8; 32], u32, u32, i64, Vec<i64>);

#[test]
fn javascript_and_rust_make_the_same_codes() {
    let Some(node) = support::app::node() else {
        return;
    };
    let cases: Vec<Case> = vec![
        (
            [0u8; 32],
            60,
            1440,
            1_800_000_000_000,
            vec![0, 59, 60, 3600, 86_399],
        ),
        ([0xff; 32], 30, 100, 1_799_999_970_000, vec![0, 31, 2999]),
        (
            core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11)),
            600,
            2016,
            1_800_000_123_000,
            vec![5, 600, 1_209_599],
        ),
    ];
    let mut script = String::from("const out = [];\n");
    for (seed, slot_secs, slots, epoch_ms, times) in &cases {
        script.push_str(&format!(
            "{{ const c = await enrol({{ slotSecs: {slot_secs}, slots: {slots}, epochMs: {epoch_ms}, seed: {:?} }});\n",
            b64(seed)
        ));
        script.push_str(
            "  out.push(JSON.stringify({anchor: c.anchor, chainId: c.chainId, epoch: c.epoch}));\n",
        );
        for t in times {
            script.push_str(&format!(
                "  out.push(await code(c, {CARD:?}, {}));\n",
                epoch_ms + t * 1000
            ));
        }
        script.push_str("}\n");
    }
    script.push_str("console.log(out.join('\\n'));\n");
    let text = support::app::run_module_script(&node, &script).join("\n");
    let mut lines = text.lines();
    let mut compared = 0;
    for (seed, slot_secs, slots, epoch_ms, times) in &cases {
        let anchor = mq2::anchor(seed, *slots);
        let head: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
        assert_eq!(head["anchor"], b64(&anchor));
        assert_eq!(head["chainId"], mq2::chain_id(&anchor));
        let chain = mq2::ChainState {
            anchor,
            epoch_unix: epoch_ms / 1000,
            slot_secs: *slot_secs,
            slots: *slots,
            revoked: false,
            used_through: 0,
            last_value: None,
        };
        for t in times {
            let now = epoch_ms / 1000 + t;
            let j = u32::try_from(mq2::slot_at(chain.epoch_unix, *slot_secs, now)).unwrap();
            let rust = mq2::make_code(CARD, seed, *slots, j).unwrap();
            let js = lines.next().unwrap();
            assert_eq!(js, rust, "seed {seed:?} t {t}");
            // and the edge accepts the JavaScript's code at that time
            let parsed = mq2::parse(js).unwrap();
            assert_eq!(parsed.card_id, CARD);
            assert!(mq2::verify(&parsed, &chain, now, 0).is_ok(), "{js}");
            compared += 1;
        }
    }
    assert_eq!(compared, 11);
}
