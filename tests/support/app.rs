//! A member's app: the JavaScript reference generator for offline payment codes
//! (`clients/js/mq2.js`), run with node, as a phone would run it.

use std::path::PathBuf;

use serde_json::Value;

/// node, from PATH. Missing: `None` (the caller skips loudly) — except in CI, where the
/// project's scripts install it and a missing node is a failure, not a skip.
pub fn node() -> Option<PathBuf> {
    let found = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|dir| std::path::Path::new(dir).join("node"))
        .find(|p| p.is_file());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "node is missing in CI; scripts/test.sh installs it"
        );
        eprintln!("\n######## SKIPPED: node is not installed; the JavaScript reference was not run ########\n");
    }
    found
}

/// Runs an ES module script that imports `{ enrol, code }` from the reference module
/// and prints one line per result; returns the lines.
pub fn run_module_script(node: &std::path::Path, body: &str) -> Vec<String> {
    let module = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/js/mq2.js");
    let script = format!(
        "import {{ enrol, code }} from {:?};\n{body}",
        format!("file://{}", module.display())
    );
    let output = std::process::Command::new(node)
        .args(["--input-type=module", "-e", &script])
        .output()
        .expect("run node");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .expect("node prints text")
        .lines()
        .map(str::to_string)
        .collect()
}

/// A chain the app enrolled: what it sends to central, and the seed it keeps.
#[derive(Debug, Clone)]
pub struct AppChain {
    /// The chain as `enrol` returned it (JSON), seed included.
    pub chain: Value,
    pub anchor: String,
    pub chain_id: String,
    pub epoch: String,
}

/// `enrol({slotSecs, slots, epochMs, seed})` with a seed given as base64url.
pub fn enrol(
    node: &std::path::Path,
    seed_b64: &str,
    slot_secs: u32,
    slots: u32,
    epoch_ms: i64,
) -> AppChain {
    let lines = run_module_script(
        node,
        &format!(
            "const c = await enrol({{ slotSecs: {slot_secs}, slots: {slots}, epochMs: {epoch_ms}, seed: {seed_b64:?} }});\nconsole.log(JSON.stringify(c));\n"
        ),
    );
    let chain: Value = serde_json::from_str(&lines[0]).expect("enrol prints the chain");
    AppChain {
        anchor: chain["anchor"].as_str().expect("anchor").to_string(),
        chain_id: chain["chainId"].as_str().expect("chainId").to_string(),
        epoch: chain["epoch"].as_str().expect("epoch").to_string(),
        chain,
    }
}

/// `code(chain, cardId, nowMs)` for each time: the QR text the app shows then.
pub fn codes(
    node: &std::path::Path,
    chain: &AppChain,
    card_id: &str,
    times_ms: &[i64],
) -> Vec<String> {
    let mut body = format!("const c = {};\n", chain.chain);
    for t in times_ms {
        body.push_str(&format!("console.log(await code(c, {card_id:?}, {t}));\n"));
    }
    run_module_script(node, &body)
}
