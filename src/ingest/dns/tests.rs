use super::*;

/// A query for www.example.com/A with an OPT record carrying ECS
/// 198.51.100.0/24 (layout of RFC 7871 §6), built by hand.
fn query_with_ecs() -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for l in ["WWW", "example", "com"] {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    // OPT: root, type 41, udp 1232, ext-rcode 0, version 0, DO
    m.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0, 0, 11]);
    m.extend_from_slice(&[0, 8, 0, 7, 0, 1, 24, 0, 198, 51, 100]);
    m
}

#[test]
fn decodes_question_and_edns() {
    let m = decode(&query_with_ecs(), false).expect("header present");
    assert!(!m.malformed);
    assert_eq!(m.id, 0x1234);
    assert!(m.flags.rd());
    let q = m.question.expect("question");
    assert_eq!(q.qname, "www.example.com");
    assert_eq!(q.qtype, Qtype::A);
    let e = m.edns.expect("edns");
    assert_eq!(e.udp_size, 1232);
    assert!(e.do_bit);
    assert_eq!(e.ecs.as_deref(), Some("198.51.100.0/24"));
}

#[test]
fn an_update_without_rdata_is_whole() {
    // UPDATE of example.org: prerequisite "www.example.org has no CNAME"
    // (class NONE, RDLENGTH 0) and "delete its A RRset" (class ANY)
    let mut m = vec![0xef, 0x07, 0x28, 0x00, 0, 1, 0, 1, 0, 1, 0, 0];
    m.extend_from_slice(b"\x07example\x03org\x00\x00\x06\x00\x01");
    m.extend_from_slice(b"\x03www\xc0\x0c\x00\x05\x00\xfe\0\0\0\0\0\0");
    m.extend_from_slice(b"\x03www\xc0\x0c\x00\x01\x00\xff\0\0\0\0\0\0");
    let d = decode(&m, true).expect("header present");
    assert!(!d.malformed, "{:?}", d.error);
    let r = Records::of(&m);
    assert_eq!(r.answers[0].data, "\\# 0");
    assert_eq!(r.authority[0].rtype, Qtype::A);
    // the same record of class IN has an A's four bytes missing
    let mut bad = m.clone();
    let at = bad.len() - 7; // the class's low byte: ANY (255) becomes IN (1)
    bad[at] = 1;
    assert!(decode(&bad, true).unwrap().malformed);
}

#[test]
fn question_names_inline_and_boxed() {
    let short = "www.example.com";
    let at_limit = "a".repeat(QNAME_INLINE);
    let long = format!("{}.example", "b".repeat(63));
    assert!(matches!(QName::new(short), QName::Inline(15, _)));
    assert!(matches!(QName::new(&at_limit), QName::Inline(62, _)));
    assert!(matches!(QName::new(&long), QName::Boxed(_)));
    for name in [short, &at_limit, &long, "."] {
        let q = QName::new(name);
        assert_eq!(q.as_str(), name);
        assert_eq!(q.to_string(), name);
        assert_eq!(q, QName::from(name));
    }
    assert_ne!(QName::new("a.example"), QName::new("a.example."));
    // a whole message's question, over the inline limit
    let mut m = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for l in ["b".repeat(63).as_str(), "example", "com"] {
        m.push(l.len() as u8);
        m.extend_from_slice(l.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    let q = decode(&m, true).unwrap().question.unwrap();
    assert_eq!(q.qname, format!("{}.example.com", "b".repeat(63)).as_str());
}

#[test]
fn pointer_loop_is_malformed_not_a_hang() {
    let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0];
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
    let d = decode(&m, true).expect("header present");
    assert!(d.malformed);
    assert!(d.question.is_none());
}

#[test]
fn odd_bytes_are_escaped() {
    let mut out = String::new();
    push_label(&mut out, b"a.b\\C \x07", true);
    assert_eq!(out, "a\\.b\\\\c\\032\\007");
}

#[test]
fn truncated_answers_keep_the_question() {
    let mut m = query_with_ecs();
    m[2] = 0x81;
    m[7] = 1; // ancount 1 but no answer follows before the OPT... garbage
    m.truncate(33);
    let d = decode(&m, true).expect("header present");
    assert!(d.malformed);
    assert_eq!(d.question.expect("question").qname, "www.example.com");
}

/// Name-shaped bytes: short labels, pointers, odd octets, zeros.
fn name_bytes() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        4 => proptest::collection::vec(b'a'..=b'z', 1..12).prop_map(|l| {
            let mut v = vec![l.len() as u8];
            v.extend(l);
            v
        }),
        1 => proptest::collection::vec(any::<u8>(), 1..70),
        1 => (0u8..64).prop_map(|t| vec![0xc0, t]),
        1 => Just(vec![0]),
    ];
    proptest::collection::vec(piece, 1..40).prop_map(|p| p.concat())
}

proptest::proptest! {
    #[test]
    fn fast_names_match_the_escaping_reader(
        msg in name_bytes(),
        pos in 0usize..64,
        lower in proptest::bool::ANY,
    ) {
        let (mut fast, mut slow) = (String::from("x"), String::from("x"));
        let a = read_name(&msg, pos, &mut fast, lower);
        let b = read_name_escaped(&msg, pos, &mut slow, lower);
        proptest::prop_assert_eq!(a, b);
        proptest::prop_assert_eq!(fast, slow);
    }
}

#[test]
fn names_with_escapes_and_long_names() {
    // www.Exa\.mple (an escaped label after a plain one), then a pointer to it
    let mut m = vec![3, b'w', b'w', b'w', 8];
    m.extend_from_slice(b"Exa.mple");
    m.extend_from_slice(&[0, 0xc0, 0]);
    let mut out = String::new();
    assert_eq!(read_name(&m, 0, &mut out, true), Ok(14));
    assert_eq!(out, "www.exa\\.mple");
    out.clear();
    assert_eq!(read_name(&m, 14, &mut out, false), Ok(16));
    assert_eq!(out, "www.Exa\\.mple");
    // 128 one-octet labels: 257 octets of wire form with the root
    let mut long: Vec<u8> = (0..128).flat_map(|_| [1, b'a']).collect();
    long.push(0);
    assert_eq!(
        read_name(&long, 0, &mut String::new(), true),
        Err(DecodeError::NameTooLong)
    );
    out.clear();
    assert_eq!(read_name(&long, 2, &mut out, true), Ok(long.len()));
    assert_eq!(out.len(), 127 * 2 - 1);
}
