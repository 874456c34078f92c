#![allow(clippy::unwrap_used)] // test helpers: a bad literal is a bug in the test
//! Every vector of `shared/vectors/epurse-vectors.json`, recomputed (copied into
//! `tests/data/epurse-vectors.json` so a clone is self-contained).

use onecard_crypto::*;

fn h<const N: usize>(s: &str) -> [u8; N] {
    let s: String = s.split_whitespace().collect();
    let v: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect();
    v.try_into().unwrap()
}

fn key(s: &str) -> Key16 {
    Key16::from_bytes(h(s))
}

#[test]
fn pboc_blog_load_ed() {
    let dlk = CardKey::new(Algorithm::Tdes, &key("11223344556677888877665544332211"));
    let sk = dlk.session_key(load_session_input(h("11223344"), 0));
    assert_eq!(
        sk.mac_parts(&[
            &h::<4>("00000000"),
            &h::<4>("00001000"),
            &[0x01],
            &h::<6>("001122334455")
        ]),
        h("2988AE5A")
    );
    let mac2 = sk.mac_parts(&[
        &h::<4>("00001000"),
        &[0x01],
        &h::<6>("001122334455"),
        &h::<4>("20111221"),
        &h::<3>("214822"),
    ]);
    assert_eq!(mac2, h("3A845BF0"));
    // The session key itself: recompute with the raw DES key and compare MACs.
    let raw = SessionKey::des_from_bytes(h("9B1D924E05595603"));
    assert_eq!(raw.mac(b"anything at all"), sk.mac(b"anything at all"));
}

#[test]
fn pboc_blog_purchase_ep() {
    let dpk = CardKey::new(Algorithm::Tdes, &key("11223344556677888877665544332211"));
    let sk = dpk.session_key(purchase_session_input(h("11223344"), 0, h("00000001")));
    let raw = SessionKey::des_from_bytes(h("003238ABC57659DD"));
    assert_eq!(raw.mac(b"x"), sk.mac(b"x"));
    let mac1 = sk.mac_parts(&[
        &h::<4>("00001000"),
        &[0x06],
        &h::<6>("001122334455"),
        &h::<7>("20120229135100"),
    ]);
    assert_eq!(mac1, h("F15CAB75"));
    assert_eq!(sk.mac(&h::<4>("00001000")), h("56988A13"));
    let tac = SessionKey::tac(Algorithm::Tdes, &key("00112233445566778899AABBCCDDEEFF"));
    assert_eq!(
        tac.mac(b"y"),
        SessionKey::des_from_bytes(h("8888888888888888")).mac(b"y")
    );
}

#[test]
fn changsha_huada_ep_load_trace() {
    let dlk = CardKey::new(Algorithm::Tdes, &key("374598B5C0B0EAE1E1D06609AC5BB369"));
    let sk = dlk.session_key(load_session_input(h("CDEF4F20"), 0));
    let (amount, ty, term) = (h::<4>("00001C37"), [0x02], h::<6>("000001000050"));
    assert_eq!(
        sk.mac_parts(&[&h::<4>("00000000"), &amount, &ty, &term]),
        h("06B1BEF5")
    );
    assert_eq!(
        sk.mac_parts(&[&amount, &ty, &term, &h::<7>("20140825103100")]),
        h("0641DCD8")
    );
    let dtk = key("CAA6025290114BFCC3C9043F70F7A07A");
    assert_eq!(
        SessionKey::tac(Algorithm::Tdes, &dtk).mac(b"z"),
        SessionKey::des_from_bytes(h("096F066DE0E6EB86")).mac(b"z")
    );
    let tac = SessionKey::tac(Algorithm::Tdes, &dtk).mac_parts(&[
        &h::<4>("00001C37"),
        &[0, 0],
        &amount,
        &ty,
        &term,
        &h::<7>("20140825103100"),
    ]);
    assert_eq!(tac, h("ED0F8755"));
}

#[test]
fn changsha_huada_external_authenticate() {
    let k = CardKey::new(Algorithm::Tdes, &key("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"));
    assert_eq!(k.encrypt8(h("DCE8F51100000000")), h("CB1693339A342336"));
}

#[test]
fn changsha_huada_application_block_mac() {
    let mac = line_mac(
        Algorithm::Tdes,
        &key("6474215EF549707831BB8DB9895FD48A"),
        h("1EA2B2E6"),
        &h::<5>("841E000004"),
    );
    assert_eq!(mac, h("A86CC6A8"));
}

#[test]
fn changsha_huada_update_binary_mf_0005() {
    let data: [u8; 45] = h("04D685002C07314100000000004100000089999985020020150605000F00000001000120150605203808080000");
    let mac = line_mac(
        Algorithm::Tdes,
        &key("F28E92292DCB63F11EA7F5776A7122B8"),
        h("1B534732"),
        &data,
    );
    assert_eq!(mac, h("C853F358"));
}

#[test]
fn sm4_profile() {
    // No public SM4 e-purse vector exists (Part A, decision 2). The cipher itself is checked with
    // the GB/T 32907 example, whose plaintext happens to be D ‖ NOT D for D = 0123456789ABCDEF,
    // i.e. exactly one SM4 diversification step.
    let k = key("0123456789ABCDEFFEDCBA9876543210");
    let d = diversify(Algorithm::Sm4, &k, h("0123456789ABCDEF"));
    assert_eq!(
        *d.expose_secret(),
        h::<16>("681EDF34D206965E86B3E94F536E4246")
    );
    // The MAC pads to 16 bytes and always adds 80: a 16-byte input gets a whole extra block.
    let ck = CardKey::new(Algorithm::Sm4, &k);
    let sk = ck.session_key([1; 8]);
    let data = [0x11u8; 16];
    assert_ne!(sk.mac(&data), sk.mac(&data[..15]));
    assert_ne!(
        ck.session_key([1; 8]).mac(b"abc"),
        ck.session_key([2; 8]).mac(b"abc")
    );
}

#[test]
fn diversification_levels() {
    let mk = key("00112233445566778899AABBCCDDEEFF");
    let issuer = h::<8>("01011000FFFFFFFF");
    let card = h::<8>("5170070104791381");
    for alg in [Algorithm::Tdes, Algorithm::Sm4] {
        let a = derive_card_key(alg, &mk, issuer, card);
        let b = diversify(alg, &diversify(alg, &mk, issuer), card);
        assert!(a == b);
        let other = derive_card_key(alg, &mk, issuer, h("5170070104791382"));
        assert!(a != other);
    }
    // 3DES level: right half is E(K, NOT D).
    let one = diversify(Algorithm::Tdes, &mk, card);
    let c = CardKey::new(Algorithm::Tdes, &mk);
    assert_eq!(one.expose_secret()[..8], c.encrypt8(card));
    assert_eq!(one.expose_secret()[8..], c.encrypt8(card.map(|b| !b)));
}
